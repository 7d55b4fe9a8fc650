// The CUDA inference session: the GPU twin of model/qwen_vl.h's QwenVLModel + Session, with the same inputs and
// results (PrefillInput / PrefillOutput, GenerateOptions / GenerateResult), so the addon serves both devices
// through one API.
//
//   GpuQwenVL   the checkpoint on the device (DeviceWeights, read from a WeightStore with packing off: packing
//               would release the mmapped pages the upload reads), its ViT and decoder. One forward at a time:
//               sessions take its lock for each prefill / generate call.
//   GpuSession  one conversation: its KV cache (grown by copying when decoding outruns it), prefill (ViT on
//               the preprocessed patches, features scattered into the <|image_pad|> rows, M-RoPE positions and
//               rope_delta from model/rope_tables as on the CPU), and the decode loop on the device:
//               greedy_next_token with the repetition penalty's `seen` mask (seeded with the prompt) picks the
//               id, one int32 comes back per step for the decoding rules (model/decode_rules.h, shared with
//               the CPU session), and the next forward is fed the id's embedding (read on the device) or, in
//               latent mode, the last post-norm hidden state.
// The attention capture of latent steps (GenerateOptions::capture_attention) runs on the device too
// (attention_probe.h): per latent step, the last row's probabilities over the image tokens, mean of heads and layers.
//
// CUDA graphs (VREFLECT_CUDA_GRAPHS=auto|on|off, read per generate call; auto and on: graphs, off: eager): a decode
// step's device work (the feed, GpuLanguageModel::enqueue_decode, logits, greedy_next_token) is captured on the
// model's stream once per step shape and replayed with one cudaGraphLaunch per token. The shape (DecodeStepKey) is
// the decode plan (split-KV and split count, the KV cache's storage: a grown cache means new pointers), the feed
// (token embedding or hidden state) and the attention probe; a shape is run eagerly the first time it occurs (lazy
// host-side set-up such as cuBLASLt plans happens outside a capture) and captured the second. A capture or
// instantiation that fails logs one line on stderr and the rest of that generate call runs eagerly, with the same
// results: the eager step runs the very same launches.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/progress.h"
#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_kv_cache.h"
#include "cuda/model/gpu_language_model.h"
#include "cuda/model/gpu_vision_tower.h"
#include "model/config.h"
#include "model/qwen_vl.h"
#include "model/weights.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// Throws a one-line vr::Error unless a CUDA device can be used (no driver, no GPU, driver too old).
void require_cuda_device();
// What runs the kernels, for logs: the GPU's name, or "CUDA emulator (CPU)".
std::string cuda_device_name();

// The chunk of a prefill (PrefillInput::prefill_chunk). Asked for (requested > 0): that, at most the prompt.
// Automatic (0): the whole prompt when the decoder's activation scratch for it (scratch_bytes(L)) fits the free
// device memory plus the scratch the model holds now (`held`, freed before a bigger one is made), else the
// largest power of two in [kMinAutoPrefillChunk, kMaxAutoPrefillChunk] that fits; the KV cache already has room for
// the whole prompt, so the chunk bounds only the activations (the memory plan's "chunked prefill",
// docs/architecture.md). Headroom for the cuBLASLt workspace and allocator rounding: 5% + 64 MiB. Free memory
// unknown (free_bytes < 0: the emulator without VREFLECT_CUDA_EMU_MEMORY): the whole prompt. Nothing fits: a
// one-line vr::Error naming --max-pixels.
constexpr int64_t kMinAutoPrefillChunk = 256;  // below it the GEMMs stop filling an H100
constexpr int64_t kMaxAutoPrefillChunk = 8192;
int64_t choose_prefill_chunk(int64_t L, int64_t requested, int64_t free_bytes, size_t held,
                             const std::function<size_t(int64_t)>& scratch_bytes);

class GpuQwenVL {
 public:
  GpuQwenVL(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors);
  const ModelConfig& config() const { return cfg_; }
  size_t weight_bytes() const { return weights_->bytes(); }

 private:
  friend class GpuSession;
  ModelConfig cfg_;
  // The decoder's work queue: a created, blocking stream (capture is impossible on the legacy null stream; blocking
  // keeps it ordered with the prefill's null-stream work, as the legacy stream's semantics say). Declared before
  // the parts that queue work on it, so it is destroyed after them (also when the constructor throws).
  struct StreamDestroyer {
    void operator()(CUstream_st* s) const;
  };
  std::unique_ptr<CUstream_st, StreamDestroyer> stream_;
  std::unique_ptr<DeviceWeights> weights_;
  std::mutex mu_;  // one forward at a time: the towers own their scratch
  std::unique_ptr<GpuVisionTower> vision_;
  std::unique_ptr<GpuLanguageModel> llm_;
};

class GpuSession {
 public:
  explicit GpuSession(std::shared_ptr<GpuQwenVL> model);
  PrefillOutput prefill(const PrefillInput& in);
  GenerateResult generate(const GenerateOptions& opt);
  int64_t cache_len() const { return cache_ ? cache_->len() : 0; }
  int64_t cache_capacity() const { return cache_ ? cache_->capacity() : 0; }
  // Tests: the KV rows kept free after the prompt and reserved at the start of generate (default: kPrefillSpare,
  // then the token limit + one latent quota + 1), so a short decode outruns its cache and grows it mid-decode.
  void set_cache_spare_for_tests(int64_t rows) { spare_for_tests_ = rows; }
  const Progress& progress() const { return progress_; }
  // Over all sessions of the process: decode steps run by cudaGraphLaunch, and graphs captured (tests prove the
  // path ran and that a changed step shape was captured again).
  static int64_t graph_launches();
  static int64_t graph_captures();

 private:
  void ensure_room(int64_t extra);  // grows the KV cache (copying its rows) so `extra` more tokens fit

  std::shared_ptr<GpuQwenVL> model_;
  std::unique_ptr<GpuKVCache> cache_;
  std::vector<int32_t> seq_;  // prompt + generated ids (the decoding rules' view)
  int64_t rope_delta_ = 0;
  int64_t image_begin_ = 0, image_end_ = 0;  // key range of the image tokens (attention capture)
  bool prefilled_ = false;
  int64_t spare_for_tests_ = -1;
  Progress progress_;
  // Device state carried from prefill into the decode loop: last post-norm hidden state, its logits, the input
  // of the next forward, the chosen id, the repetition penalty's seen mask.
  DeviceArena state_;
  float *hidden_ = nullptr, *logits_ = nullptr, *x_ = nullptr;
  int32_t* next_ = nullptr;
  uint8_t* seen_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
