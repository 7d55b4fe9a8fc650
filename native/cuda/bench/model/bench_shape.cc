#include "cuda/bench/model/bench_shape.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"

namespace vr::bench {

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string BenchShape::json() const {
  return "{\"preset\":\"" + preset + "\",\"layers\":" + std::to_string(cfg.text.layers) +
         ",\"vit_layers\":" + std::to_string(cfg.vision.depth) + ",\"vocab\":" + std::to_string(cfg.text.vocab) + "}";
}

namespace {

// Qwen's special ids (<|endoftext|> 151643 .. <|lvr_end|> 151668), moved to the top 32 rows of a vocabulary cut
// below them (src/bench/train_model.ts remapTokenId).
constexpr int kFirstSpecial = 151643, kLastSpecial = 151668, kSpecialBlock = 32;

BenchIds qwen_ids(int vocab, int full_vocab) {
  const bool cut = vocab < full_vocab;
  auto r = [&](int id) { return cut ? vocab - kSpecialBlock + (id - kFirstSpecial) : id; };
  BenchIds b;
  b.end_of_text = r(151643), b.im_start = r(151644), b.im_end = r(151645);
  b.vision_start = r(151652), b.vision_end = r(151653), b.image_pad = r(151655);
  b.lvr_start = r(151665), b.lvr = r(151666), b.lvr_latent_end = r(151667), b.lvr_end = r(151668);
  b.text_limit = cut ? vocab - kSpecialBlock : kFirstSpecial;
  return b;
}

VisionConfig vision_7b(int depth, int out_hidden) {
  VisionConfig v;
  v.depth = depth, v.hidden = 1280, v.heads = 16, v.intermediate = 3420, v.out_hidden = out_hidden;
  v.patch = 14, v.temporal_patch = 2, v.merge = 2, v.window_size = 112, v.in_channels = 3, v.rope_theta = 10000.0f;
  return v;
}

// benchShape's rule: every 8th block from block 7, and the last.
std::vector<int> fullatt_blocks(int depth) {
  std::set<int> s;
  for (int i = 7; i < depth; i += 8) s.insert(i);
  s.insert(depth - 1);
  return {s.begin(), s.end()};
}

}  // namespace

BenchShape make_shape(const std::string& preset, int layers, int vit_layers, int vocab) {
  BenchShape s;
  s.preset = preset;
  TextConfig& t = s.cfg.text;
  int full_vocab = 0;
  if (preset == "7b" || preset == "3b") {
    const bool b7 = preset == "7b";
    s.name = b7 ? "Qwen2.5-VL-7B" : "Qwen2.5-VL-3B";
    t.hidden = b7 ? 3584 : 2048, t.layers = b7 ? 28 : 36, t.heads = b7 ? 28 : 16, t.kv_heads = b7 ? 4 : 2;
    t.head_dim = 128, t.intermediate = b7 ? 18944 : 11008, full_vocab = b7 ? 152064 : 151936;
    t.eps = 1e-6f, t.rope_theta = 1e6f, t.mrope_section[0] = 16, t.mrope_section[1] = 24, t.mrope_section[2] = 24;
    t.tie_embeddings = !b7;
    s.cfg.vision = vision_7b(32, t.hidden);
  } else if (preset == "tiny") {
    s.name = "tiny-flat";
    t.hidden = 64, t.layers = 3, t.heads = 4, t.kv_heads = 2, t.head_dim = 16, t.intermediate = 128;
    full_vocab = 416;
    t.eps = 1e-6f, t.rope_theta = 1e6f, t.mrope_section[0] = 2, t.mrope_section[1] = 3, t.mrope_section[2] = 3;
    t.tie_embeddings = false;
    VisionConfig& v = s.cfg.vision;
    v.depth = 4, v.hidden = 32, v.heads = 2, v.intermediate = 48, v.out_hidden = 64, v.window_size = 112;
  } else {
    fail("--shape must be 7b, 3b or tiny, got '", preset, "'");
  }
  s.full_layers = t.layers, s.full_vit_layers = s.cfg.vision.depth;
  VR_CHECK(layers <= s.full_layers, "--layers ", layers, " is more than the ", s.name, "'s ", s.full_layers);
  VR_CHECK(vit_layers <= s.full_vit_layers, "--vit-layers ", vit_layers, " is more than the ", s.name, "'s ",
           s.full_vit_layers);
  if (layers > 0) t.layers = layers;
  if (vit_layers > 0) s.cfg.vision.depth = vit_layers;
  s.cfg.vision.fullatt_blocks = preset == "tiny" && vit_layers <= 0 ? std::vector<int>{1, 3}
                                                                     : fullatt_blocks(s.cfg.vision.depth);
  t.vocab = vocab > 0 ? vocab : full_vocab;
  if (preset == "tiny") {
    VR_CHECK(t.vocab == full_vocab, "--vocab cannot change the tiny shape's vocabulary (", full_vocab, ")");
    BenchIds& b = s.ids;  // tiny-flat's config.json
    b.end_of_text = 360, b.im_start = 361, b.im_end = 362, b.vision_start = 369, b.vision_end = 370;
    b.image_pad = 372, b.lvr_start = 374, b.lvr = 375, b.lvr_latent_end = 376, b.lvr_end = 377, b.text_limit = 360;
  } else {
    VR_CHECK(t.vocab >= 1024 && t.vocab <= full_vocab, "--vocab must be in [1024, ", full_vocab, "], got ", t.vocab);
    s.ids = qwen_ids(t.vocab, full_vocab);
  }
  if (t.layers < s.full_layers || s.cfg.vision.depth < s.full_vit_layers || t.vocab < full_vocab)
    s.name += " (" + std::to_string(t.layers) + "/" + std::to_string(s.full_layers) + " layers, " +
              std::to_string(s.cfg.vision.depth) + "/" + std::to_string(s.full_vit_layers) + " ViT blocks, vocab " +
              std::to_string(t.vocab) + ")";
  s.cfg.image_token_id = s.ids.image_pad;
  s.cfg.vision_start_token_id = s.ids.vision_start;
  s.cfg.compute = DType::BF16;
  s.cfg.validate();
  return s;
}

std::vector<TensorSpec> tensor_specs(const BenchShape& s) {
  const TextConfig& t = s.cfg.text;
  const VisionConfig& v = s.cfg.vision;
  std::vector<TensorSpec> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, TensorInit init = TensorInit::Normal) {
    out.push_back({name, std::move(shape), init});
  };
  const int64_t vh = v.hidden, vi = v.intermediate;
  add("visual.patch_embed.proj.weight", {vh, v.in_channels, v.temporal_patch, v.patch, v.patch});
  for (int i = 0; i < v.depth; i++) {
    const std::string p = "visual.blocks." + std::to_string(i) + ".";
    add(p + "norm1.weight", {vh}, TensorInit::Ones);
    add(p + "norm2.weight", {vh}, TensorInit::Ones);
    add(p + "attn.qkv.weight", {3 * vh, vh});
    add(p + "attn.qkv.bias", {3 * vh});
    add(p + "attn.proj.weight", {vh, vh});
    add(p + "attn.proj.bias", {vh});
    for (const char* g : {"gate_proj", "up_proj"}) {
      add(p + "mlp." + g + ".weight", {vi, vh});
      add(p + "mlp." + g + ".bias", {vi});
    }
    add(p + "mlp.down_proj.weight", {vh, vi});
    add(p + "mlp.down_proj.bias", {vh});
  }
  const int64_t merge_in = vh * v.merge * v.merge;
  add("visual.merger.ln_q.weight", {vh}, TensorInit::Ones);
  add("visual.merger.mlp.0.weight", {merge_in, merge_in});
  add("visual.merger.mlp.0.bias", {merge_in});
  add("visual.merger.mlp.2.weight", {v.out_hidden, merge_in});
  add("visual.merger.mlp.2.bias", {v.out_hidden});

  const int64_t D = t.hidden, kv = int64_t(t.kv_heads) * t.head_dim, q = int64_t(t.heads) * t.head_dim;
  add("model.embed_tokens.weight", {t.vocab, D});
  for (int i = 0; i < t.layers; i++) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {D}, TensorInit::Ones);
    add(p + "post_attention_layernorm.weight", {D}, TensorInit::Ones);
    add(p + "self_attn.q_proj.weight", {q, D});
    add(p + "self_attn.q_proj.bias", {q});
    add(p + "self_attn.k_proj.weight", {kv, D});
    add(p + "self_attn.k_proj.bias", {kv});
    add(p + "self_attn.v_proj.weight", {kv, D});
    add(p + "self_attn.v_proj.bias", {kv});
    add(p + "self_attn.o_proj.weight", {D, q});
    add(p + "mlp.gate_proj.weight", {t.intermediate, D});
    add(p + "mlp.up_proj.weight", {t.intermediate, D});
    add(p + "mlp.down_proj.weight", {D, t.intermediate});
  }
  add("model.norm.weight", {D}, TensorInit::Ones);
  if (!t.tie_embeddings) add("lm_head.weight", {t.vocab, D});
  std::sort(out.begin(), out.end(), [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; });
  return out;
}

std::vector<TensorSpec> bcm_specs(const BenchShape& s, int latent_count) {
  const int64_t D = s.cfg.text.hidden;
  const std::string p = "box_feature_resampler.";
  std::vector<TensorSpec> out = {{p + "cross_attn.in_proj_bias", {3 * D}, TensorInit::Normal},
                                 {p + "cross_attn.in_proj_weight", {3 * D, D}, TensorInit::Normal},
                                 {p + "cross_attn.out_proj.bias", {D}, TensorInit::Normal},
                                 {p + "cross_attn.out_proj.weight", {D, D}, TensorInit::Normal},
                                 {p + "output_norm.bias", {D}, TensorInit::Normal},
                                 {p + "output_norm.weight", {D}, TensorInit::Ones},
                                 {p + "queries", {1, latent_count, D}, TensorInit::Normal}};
  return out;  // name order
}

std::string config_json(const BenchShape& s) {
  const TextConfig& t = s.cfg.text;
  const VisionConfig& v = s.cfg.vision;
  const BenchIds& b = s.ids;
  auto i = [](int64_t x) { return std::to_string(x); };
  std::string full;
  for (int x : v.fullatt_blocks) full += (full.empty() ? "" : ", ") + i(x);
  return std::string("{\n") + "  \"architectures\": [\"Qwen2_5_VLForConditionalGeneration\"],\n" +
         "  \"model_type\": \"qwen2_5_vl\",\n  \"attention_dropout\": 0.0,\n  \"hidden_act\": \"silu\",\n" +
         "  \"bos_token_id\": " + i(b.end_of_text) + ",\n  \"eos_token_id\": " + i(b.im_end) + ",\n" +
         "  \"vision_start_token_id\": " + i(b.vision_start) + ",\n  \"vision_end_token_id\": " + i(b.vision_end) +
         ",\n  \"vision_token_id\": " + i(b.image_pad - 1) + ",\n  \"image_token_id\": " + i(b.image_pad) +
         ",\n  \"video_token_id\": " + i(b.image_pad + 1) + ",\n  \"lvr_start_id\": " + i(b.lvr_start) +
         ",\n  \"lvr_id\": " + i(b.lvr) + ",\n  \"lvr_latent_end_id\": " + i(b.lvr_latent_end) +
         ",\n  \"lvr_end_id\": " + i(b.lvr_end) + ",\n" + "  \"hidden_size\": " + i(t.hidden) +
         ",\n  \"intermediate_size\": " + i(t.intermediate) + ",\n  \"num_hidden_layers\": " + i(t.layers) +
         ",\n  \"max_window_layers\": " + i(t.layers) + ",\n  \"num_attention_heads\": " + i(t.heads) +
         ",\n  \"num_key_value_heads\": " + i(t.kv_heads) + ",\n  \"rms_norm_eps\": 1e-06,\n" +
         "  \"rope_theta\": 1000000.0,\n  \"max_position_embeddings\": 128000,\n  \"sliding_window\": 32768,\n" +
         "  \"use_sliding_window\": false,\n  \"use_cache\": true,\n  \"initializer_range\": 0.02,\n" +
         "  \"tie_word_embeddings\": " + (t.tie_embeddings ? "true" : "false") + ",\n" +
         "  \"torch_dtype\": \"bfloat16\",\n  \"vocab_size\": " + i(t.vocab) + ",\n" +
         "  \"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [" + i(t.mrope_section[0]) + ", " +
         i(t.mrope_section[1]) + ", " + i(t.mrope_section[2]) + "]},\n" + "  \"vision_config\": {\"depth\": " +
         i(v.depth) + ", \"hidden_act\": \"silu\", \"hidden_size\": " + i(v.hidden) + ", \"intermediate_size\": " +
         i(v.intermediate) + ", \"num_heads\": " + i(v.heads) + ", \"in_chans\": " + i(v.in_channels) +
         ", \"out_hidden_size\": " + i(v.out_hidden) + ", \"patch_size\": " + i(v.patch) +
         ", \"spatial_merge_size\": " + i(v.merge) + ", \"spatial_patch_size\": " + i(v.patch) +
         ", \"window_size\": " + i(v.window_size) + ", \"fullatt_block_indexes\": [" + full +
         "], \"tokens_per_second\": 2, \"temporal_patch_size\": " + i(v.temporal_patch) + "}\n}\n";
}

ImageGrid grid_for_tokens(int64_t tokens) {
  VR_CHECK(tokens >= 1, "--image-tokens must be >= 1, got ", tokens);
  int64_t h = int64_t(std::sqrt(double(tokens)));
  while (h > 1 && tokens % h) h--;
  ImageGrid g;
  g.t = 1, g.h = int(2 * h), g.w = int(2 * (tokens / h));
  return g;
}

ParamCounts param_counts(const BenchShape& s) {
  ParamCounts c;
  for (const TensorSpec& t : tensor_specs(s)) (t.name.rfind("visual.", 0) == 0 ? c.vision : c.llm) += t.numel();
  return c;
}

int64_t decode_weight_bytes(const BenchShape& s) {
  int64_t n = s.cfg.text.hidden;  // one embedding row
  for (const TensorSpec& t : tensor_specs(s))
    if (t.name.rfind("model.layers.", 0) == 0 || t.name == "model.norm.weight" || t.name == "lm_head.weight")
      n += t.numel();
  if (s.cfg.text.tie_embeddings) n += int64_t(s.cfg.text.vocab) * s.cfg.text.hidden;  // lm_head is the table
  return 2 * n;
}

namespace {

double layer_mac_per_token(const TextConfig& t) {
  const double D = t.hidden, q = double(t.heads) * t.head_dim, kv = double(t.kv_heads) * t.head_dim;
  return D * (q + 2 * kv) + q * D + 3 * D * t.intermediate;
}

double causal_attn_mac(const TextConfig& t, double L) { return 2.0 * t.heads * t.head_dim * (L * (L + 1) / 2); }

// ViT + merger multiply-adds of one image (prefillCost's vision part).
double vision_mac(const VisionConfig& v, const ImageGrid& g) {
  const double np = double(g.patches()), nt = np / (v.merge * v.merge), H = v.hidden;
  const double per_block = H * 3 * H + H * H + 3 * H * v.intermediate;
  double mac = np * v.patch_dim() * H + v.depth * np * per_block;
  // Window spans in patches: windows of window_size px over the merged grid, edge windows smaller.
  const int wm = v.window_size / v.patch / v.merge, hm = g.h / v.merge, wt = g.w / v.merge;
  std::vector<double> windows;
  for (int t = 0; t < g.t; t++)
    for (int r = 0; r < hm; r += wm)
      for (int c = 0; c < wt; c += wm)
        windows.push_back(double(std::min(wm, hm - r)) * std::min(wm, wt - c) * v.merge * v.merge);
  const std::set<int> full(v.fullatt_blocks.begin(), v.fullatt_blocks.end());
  for (int b = 0; b < v.depth; b++) {
    if (full.count(b)) {
      mac += 2 * np * np * H;
    } else {
      for (double s : windows) mac += 2 * s * s * H;
    }
  }
  const double merge_in = H * v.merge * v.merge;
  return mac + nt * (merge_in * merge_in + merge_in * v.out_hidden);
}

}  // namespace

double prefill_flop(const ModelConfig& c, const ImageGrid* grid, int64_t prompt_tokens) {
  const TextConfig& t = c.text;
  double mac = grid ? vision_mac(c.vision, *grid) : 0.0;
  mac += t.layers * double(prompt_tokens) * layer_mac_per_token(t);
  mac += t.layers * causal_attn_mac(t, double(prompt_tokens));
  mac += double(t.hidden) * t.vocab;
  return 2 * mac;
}

double train_model_flop(const ModelConfig& c, const TrainFlopInput& in) {
  const TextConfig& t = c.text;
  double tokens = 0, attn = 0;
  for (int64_t L : in.sample_tokens) tokens += double(L), attn += causal_attn_mac(t, double(L));
  const double D = t.hidden, K = in.latent_count;
  auto head_mac = [&](double n) { return K * D * D + 2 * n * D * D + 2 * K * n * D + K * D * D; };  // bcmMac
  double bcm = 0, dac = 0;
  for (int64_t n : in.box_tokens) bcm += head_mac(double(n));
  for (int64_t n : in.box_sample_visual) dac += head_mac(double(n));
  const double head_trained = in.stage == 2 ? dac : bcm, head_frozen = in.stage == 2 ? bcm : 0;
  const double trained = t.layers * tokens * layer_mac_per_token(t) + t.layers * attn +
                         double(in.targets) * t.vocab * D + head_trained;
  double vit = 0;
  for (const ImageGrid& g : in.grids) vit += vision_mac(c.vision, g);
  return 2 * (3 * trained + vit + head_frozen);
}

}  // namespace vr::bench
