// The Qwen2 decoder of Qwen2.5-VL on the CUDA backend: the GPU twin of model/language_model.h, same API shape
// (input embeddings in, post-norm hidden states out, a KV cache extended by each forward).
//
// Precision: the residual stream x is fp32 (as on the CPU); the operands of every GEMM and of attention are bf16
// (the normalised inputs, q/k/v, the attention output, the SwiGLU product), every GEMM accumulates in fp32, and
// the o / down projections add their fp32 result straight into x (GEMM with accumulate). The KV cache is bf16.
// Per layer: RMSNorm -> bf16, one fused q|k|v GEMM (+bias) -> M-RoPE on q and k in place -> KV append ->
// causal GQA flash attention over cache + new rows -> o GEMM += x -> RMSNorm -> gate, up GEMMs -> SwiGLU ->
// down GEMM += x. Then the final RMSNorm (fp32 out) and lm_head for the rows asked for.
//
// Not thread-safe: one model object owns the scratch of one forward at a time. The DeviceWeights must outlive it.
// Work is queued on the stream given at construction; the host-side tables are uploaded in stream order.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/attention_probe.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_kv_cache.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuLanguageModel {
 public:
  explicit GpuLanguageModel(const DeviceWeights& w, Stream s = nullptr);
  const TextConfig& config() const { return tc_; }
  GpuKVCache new_cache(int64_t capacity) const { return GpuKVCache(tc_, capacity); }

  // x [T, D] fp32 (device) = rows ids[t] (device int32) of the table. With check_ids the ids are checked in
  // [0, vocab) first (one device -> host read: a one-line error naming the position); a decode loop feeding the
  // id greedy_next_token wrote skips it, so the id never makes a host round trip.
  void embed(float* x, const int32_t* ids, int64_t T, bool check_ids = true);
  // x [T, D] fp32 input embeddings (device) at M-RoPE positions pos3 (HOST, planes t/h/w plane_stride apart),
  // appended after the cache; writes the post-norm hidden states [T, D] fp32 (device) and extends the cache.
  // hidden may alias x. With a probe, the last row's attention probabilities over the probe's key range, averaged
  // over heads and layers, are written to probe->probs (the latent steps' attention capture).
  void forward(float* hidden, const float* x, int64_t T, const int64_t* pos3, int64_t plane_stride,
               GpuKVCache& cache, const DeviceAttnProbe* probe = nullptr);
  // logits [rows, vocab] fp32 (device) = hidden rows (fp32, device, rounded to bf16) @ lm_head^T.
  void logits(float* out, const float* hidden, int64_t rows);

  // Device bytes of the activation scratch a call over `rows` tokens needs (embed, forward and logits all share
  // it), and what the model holds now: a chunked prefill sizes its chunks with these (GpuSession).
  size_t scratch_bytes(int64_t rows) const;
  size_t scratch_held() const { return scratch_.capacity(); }

 private:
  // The activation buffers of one call, carved from one arena sized for `rows` tokens.
  struct Scratch {
    float* x = nullptr;  // the residual stream [rows, D]
    bf16 *h16 = nullptr, *qkv16 = nullptr, *att16 = nullptr, *g16 = nullptr, *u16 = nullptr;
    float *cos = nullptr, *sin = nullptr;
    float* lse = nullptr;    // [heads, rows]: the attention's log-sum-exp, written only for a probe
    int32_t* cu = nullptr;   // cu_q [2], cu_k [2], first bad id [1]
  };
  template <class Arena>
  static void carve(Arena& a, const TextConfig& tc, int64_t rows, Scratch& s);
  void reserve(int64_t rows);  // scratch for calls of up to `rows` tokens
  const DeviceWeights& w_;
  TextConfig tc_;
  Stream s_;
  DeviceArena scratch_;
  int64_t scratch_rows_ = 0;
  Scratch sc_;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
