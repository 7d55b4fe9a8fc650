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
// Memory: activation checkpointing is a choice, as TrainLLM's (set_checkpointing; on by default). Either way the
// forward keeps each layer's input [T, D] fp32 (and the final residual) and the MLP runs in row chunks (as the
// CPU's). On: the backward recomputes one layer (attention half and gate/up) from its input into ONE layer's
// scratch (the MLP's [rows, intermediate] buffers one chunk's). Off: the forward keeps, per layer, exactly what
// the backward reads (`Saved`: x2 fp32, both RMSNorm rstd, the attention's lse, h1 / h2 / q|k|v after RoPE /
// attention output bf16, and the gate / up outputs bf16 for ALL rows [T, intermediate]) and the backward
// recomputes nothing but the SwiGLU product silu(g) * u of each chunk (one elementwise pass; keeping it too would
// cost another 2 B x intermediate per token and layer). The kept tensors are the bits the recompute produces (same
// kernels, same shapes, same chunks), so both modes give bit-identical hidden states, dx and weight gradients up
// to the order of the atomics that sum RMSNorm weight / bias gradients (test_train_llm.cc). scratch_bytes() is
// the arena: src/plan/gpu_memory.ts decoderScratchPieces lists the same pieces.
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
  // Activation checkpointing (recompute each layer in the backward) on or off; takes effect at the next forward
  // (a change discards the last forward's state: backward() before a new forward is an error).
  void set_checkpointing(bool on);
  bool checkpointing() const { return checkpointing_; }
  // Device bytes of the activation arena (grown to the largest T seen; 0 before the first forward).
  size_t scratch_bytes() const { return arena_.capacity(); }

 private:
  struct Layer {
    const DeviceParam *in_norm, *post_norm, *qkv_w, *qkv_b, *o, *gate, *up, *down;
  };
  // What one layer's backward reads besides its input: the recompute's scratch (checkpointing on: one of these,
  // g / u one chunk's rows) or the forward's per-layer record (off: one per layer, g / u all T rows).
  struct Saved {
    float *x2 = nullptr, *rstd1 = nullptr, *rstd2 = nullptr, *lse = nullptr;
    bf16 *h1 = nullptr, *h2 = nullptr, *qkv = nullptr, *att = nullptr, *g = nullptr, *u = nullptr;
  };
  void reserve(int64_t T);
  // h1, q|k|v (+RoPE), attention, x2 = x + att Wo^T, h2 = rmsnorm(x2) (fp32 rstd kept), into sv. x2 may be the
  // next layer's input slot (checkpointed forward) or sv.x2.
  void attention_half(const Layer& l, const Saved& sv, const float* x, float* x2);
  // sv's gate / up rows of rows r0.. (the chunk's scratch when checkpointing, else the rows themselves).
  bf16* g_rows(const Saved& sv, int64_t r0) const;
  bf16* u_rows(const Saved& sv, int64_t r0) const;
  void gate_up(const Layer& l, const Saved& sv, int64_t r0, int64_t m);  // rows r0..r0+m: g, u = h2 W^T; act16 = silu(g) * u
  void layer_backward(const Layer& l, const Saved& sv, const float* x, const float* dy, float* dx);

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
  bool checkpointing_ = true;
  float* acts_ = nullptr;        // [(layers + 1), T, D]: layer inputs, then the final residual
  float* final_rstd_ = nullptr;  // [T]
  float *cos_ = nullptr, *sin_ = nullptr;
  int32_t* cu_ = nullptr;        // [nseq + 1], then one int for the id check
  float* hn_ = nullptr;          // [T, D] fp32 RMSNorm output before its bf16 rounding
  std::vector<Saved> saved_;     // checkpointing: 1 (scratch), else one per layer
  bf16* act16_ = nullptr;        // [chunk, F] SwiGLU product
  float *dy_ = nullptr, *dprev_ = nullptr, *dx2_ = nullptr, *dh_ = nullptr, *dF_ = nullptr, *datt_ = nullptr;
  bf16 *d16_ = nullptr, *dg16_ = nullptr, *du16_ = nullptr, *dqkv16_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
