// The Qwen2 decoder for training on the CUDA backend: the device twin of model/llm_train.h (TrainLLM), same
// API shape - input embeddings of a packed batch in, post-norm hidden states out; the backward takes the
// gradient of the hidden states and gives the gradient of the input embeddings plus every decoder weight
// gradient, accumulated (+=) into the GpuTrainParams gradients.
//
// The tensors are the ones the CPU TrainLLM registered in its ParamStore (build TrainLLM over the store first,
// then GpuTrainParams with param_layout(), which glues q|k|v into one fused GEMM weight + bias).
//
// Precision, as the inference decoder (gpu_language_model.h): residual stream and its gradient fp32; operands of
// every GEMM and of attention bf16 (normalised inputs, q/k/v after RoPE, attention output, SwiGLU product and,
// in the backward, the incoming gradients of each GEMM and the attention's dq/dk/dv); fp32 accumulation; weight
// gradients fp32. RMSNorm statistics and backward fp32.
//
// Memory: activation checkpointing as TrainLLM's default - the forward keeps each layer's input [T, D] fp32 (and
// the final residual); the backward recomputes one layer (attention half and gate/up) from it. The MLP runs in
// row chunks (as the CPU's), so its [rows, intermediate] scratch is one chunk's, never [T, intermediate].
//
// Not thread-safe; work is queued on the stream given at construction (host tables uploaded in stream order).
#pragma once
#include <cstdint>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/gpu_train_params.h"
#include "model/config.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuTrainLLM {
 public:
  // The device layout the decoder needs: per layer q|k|v weights and biases fused; the embedding fp32 on device.
  static GpuParamLayout param_layout(const TextConfig& tc);
  GpuTrainLLM(const TextConfig& tc, GpuTrainParams& params, Stream s = nullptr);
  const TextConfig& config() const { return tc_; }

  // x [T, D] fp32 (device) = rows ids[t] (device int32) of the fp32 table. With check_ids the ids are checked in
  // [0, vocab) first (one device -> host read; a one-line error naming the position).
  void embed(float* x, const int32_t* ids, int64_t T, bool check_ids = true);
  // table gradient += dx rows (callers zero the rows of overwritten positions first: scatter_rows_backward).
  void embed_backward(const float* dx, const int32_t* ids, int64_t T);

  // x [T, D] fp32 input embeddings (device); pos3 [3, T] (HOST: planes t, h, w); cu [nseq + 1] (HOST, cu[0] = 0,
  // cu[nseq] = T, no empty sample): causal attention inside each sample. Writes the post-norm hidden states
  // [T, D] fp32 (device; may alias x) and keeps what backward needs.
  void forward(float* hidden, const float* x, int64_t T, const int32_t* pos3, const int32_t* cu, int nseq);
  // dhidden [T, D] fp32 (device) -> dx [T, D] (device, overwritten; may alias dhidden). Accumulates every
  // decoder weight gradient. Uses the state of the last forward.
  void backward(float* dx, const float* dhidden);

  // lm_head (the embedding when tied): bf16 weight [vocab, D] and its fp32 gradient.
  const bf16* lm_head_bf16() const { return lm_head_->w16; }
  float* lm_head_grad() const { return lm_head_->g; }
  // Rows per MLP pass (default 1024, as TrainLLM; tests lower it to cross chunk boundaries). Takes effect at the
  // next forward.
  void set_mlp_chunk_rows(int64_t n);

 private:
  struct Layer {
    const DeviceParam *in_norm, *post_norm, *qkv_w, *qkv_b, *o, *gate, *up, *down;
  };
  void reserve(int64_t T);
  // h1, q|k|v (+RoPE), attention, x2 = x + att Wo^T, h2 = rmsnorm(x2) (fp32 rstd kept). x2 may be the next
  // layer's input slot (forward) or scratch (recompute).
  void attention_half(const Layer& l, const float* x, float* x2);
  void gate_up(const Layer& l, int64_t r0, int64_t m);  // rows r0..r0+m: g16, u16 = h2 W^T; act16 = silu(g) * u
  void layer_backward(const Layer& l, const float* x, const float* dy, float* dx);

  TextConfig tc_;
  GpuTrainParams& p_;
  Stream s_;
  const DeviceParam *embed_ = nullptr, *final_norm_ = nullptr, *lm_head_ = nullptr;
  std::vector<Layer> layers_;

  // State of the last forward.
  int64_t T_ = 0;
  int nseq_ = 0, max_seqlen_ = 0;
  AttnArgs attn_;

  // Device scratch, grown to the largest T seen.
  DeviceArena arena_;
  int64_t rows_ = 0, chunk_ = 0, mlp_chunk_ = 1024;
  float* acts_ = nullptr;        // [(layers + 1), T, D]: layer inputs, then the final residual
  float* final_rstd_ = nullptr;  // [T]
  float *cos_ = nullptr, *sin_ = nullptr;
  int32_t* cu_ = nullptr;        // [nseq + 1], then one int for the id check
  float *hn_ = nullptr, *rstd1_ = nullptr, *rstd2_ = nullptr, *x2_ = nullptr, *lse_ = nullptr;
  bf16 *h1_16_ = nullptr, *h2_16_ = nullptr, *qkv16_ = nullptr, *att16_ = nullptr;
  bf16 *g16_ = nullptr, *u16_ = nullptr, *act16_ = nullptr;
  float *dy_ = nullptr, *dprev_ = nullptr, *dx2_ = nullptr, *dh_ = nullptr, *dF_ = nullptr, *datt_ = nullptr;
  bf16 *d16_ = nullptr, *dg16_ = nullptr, *du16_ = nullptr, *dqkv16_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
