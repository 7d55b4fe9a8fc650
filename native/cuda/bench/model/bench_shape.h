// The model shapes of vreflect_cuda_model_bench (native/cuda/bench/model/README.md): the ModelConfig of a preset
// cut to --layers / --vit-layers (and optionally a truncated vocabulary), its special token ids, the tensor list of
// its random checkpoint in the released flat naming, and the FLOP counts the report divides by.
//
// Where the numbers come from:
//   7b, 3b  src/plan/model_shape.ts PRESETS (the released configs, docs/model.md §1.3): widths, heads, vocab,
//           M-RoPE sections, tied embeddings (3b), the ViT of VISION_7B (3b: out_hidden 2048);
//           Qwen's special ids 151643.. (src/bench/model_shape.ts configJson);
//   tiny    test/golden/models/tiny-flat/config.json (hidden 64, 3 layers, vocab 416, ViT 32 wide, 4 blocks):
//           the emulator's shape (CI), with tiny-flat's special ids.
// Cutting the ViT keeps the 7B's mix (src/bench/model_shape.ts benchShape): full attention in every 8th block
// from block 7 and in the last. A truncated vocabulary (--vocab, as `bench train`'s, src/bench/train_model.ts)
// moves Qwen's 26 special ids to the top 32 rows.
// FLOPs (2 per multiply-add; norms, RoPE, softmax ignored): prefill as src/bench/model_shape.ts prefillCost, a
// training micro-batch as src/bench/train_flops.ts trainStepCost (model FLOPs: 3 x the trained forward + the
// frozen ViT forward once; recompute not counted).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/rope_tables.h"

namespace vr::bench {

struct BenchIds {
  int end_of_text = -1, im_start = -1, im_end = -1, vision_start = -1, vision_end = -1, image_pad = -1;
  int lvr_start = -1, lvr = -1, lvr_latent_end = -1, lvr_end = -1;
  int text_limit = 0;  // ordinary text ids are drawn from [0, text_limit)
};

enum class TensorInit { Normal, Ones };  // normal: std 0.02; ones: norm weights

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorInit init = TensorInit::Normal;
  int64_t numel() const;
};

struct BenchShape {
  std::string preset;  // "7b" | "3b" | "tiny"
  std::string name;    // "Qwen2.5-VL-7B (4 of 28 layers)"
  ModelConfig cfg;     // compute bf16
  BenchIds ids;
  int full_layers = 0, full_vit_layers = 0;  // the preset's depths
  // The JSON the marker and the report print: {"preset","layers","vit_layers","vocab"}.
  std::string json() const;
};

// layers / vit_layers / vocab <= 0: the preset's own. vr::Error naming the bad value otherwise.
BenchShape make_shape(const std::string& preset, int layers, int vit_layers, int vocab);

// Every tensor of the checkpoint (flat names, [out, in] Linear layout), in name order.
std::vector<TensorSpec> tensor_specs(const BenchShape& s);

// The BCM head's tensors (model/bcm.h: "box_feature_resampler." queries [1, K, D], cross_attn in/out projections,
// output_norm), for stage 2's frozen teacher.
std::vector<TensorSpec> bcm_specs(const BenchShape& s, int latent_count);

// config.json of the checkpoint in the released flat layout (transformers / the torch scripts read it).
std::string config_json(const BenchShape& s);

// A near-square grid of `tokens` merged tokens (h x w patches, both even; h <= w). vr::Error when tokens < 1.
ImageGrid grid_for_tokens(int64_t tokens);

// Parameters: decoder side (embeddings, layers, norm, lm_head) and vision side (ViT + merger).
struct ParamCounts {
  int64_t llm = 0, vision = 0;
};
ParamCounts param_counts(const BenchShape& s);
// Bytes read from memory per decoded token in bf16: the decoder layers, final norm, lm_head, one embedding row.
int64_t decode_weight_bytes(const BenchShape& s);

// src/bench/model_shape.ts prefillCost's total: ViT (patch embed, blocks with window / full attention, merger),
// the decoder over `prompt_tokens` tokens (causal), lm_head on the last row.
double prefill_flop(const ModelConfig& c, const ImageGrid* grid, int64_t prompt_tokens);

// src/bench/train_flops.ts trainStepCost's modelFlop for one micro-batch. Stage 2 (not in train_flops.ts): the
// trained forward has the DAC (K queries at the slots over all of the sample's visual tokens) instead of the BCM,
// and the frozen BCM teacher's forward counts once, like the ViT.
struct TrainFlopInput {
  std::vector<int64_t> sample_tokens;
  int64_t targets = 0;
  std::vector<ImageGrid> grids;
  std::vector<int64_t> box_tokens;
  int latent_count = 8;
  int stage = 1;
  std::vector<int64_t> box_sample_visual;  // stage 2: visual tokens of each box's sample (the DAC's keys)
};
double train_model_flop(const ModelConfig& c, const TrainFlopInput& in);

}  // namespace vr::bench
