// Host API of the CUDA kernels (native/cuda/kernels/*.cu). Plain C++: no CUDA header is needed to call them.
//
// Every pointer is device memory. The maths and layouts follow the CPU twins in native/ops/*.h; each function
// says where it differs. Storage is fp32 or bf16 (overloads); arithmetic is always fp32. Arguments are checked
// on the host (vr::Error with a one-line message); a failed launch throws vr::Error naming the kernel.
//
// The same source is compiled twice: by nvcc for the GPU, and by g++ against the CPU emulator (native/cuda_emu)
// for tests. An inline namespace keeps the two builds' symbols apart, so both can live in one program.
#pragma once
#include <cstdint>

struct CUstream_st;  // cudaStream_t is CUstream_st*

#if defined(VR_CUDA_EMULATED)
#define VR_CUDA_ABI emu
#else
#define VR_CUDA_ABI gpu
#endif

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

using Stream = CUstream_st*;

// bf16 storage (the bit pattern, same layout as __nv_bfloat16); convert with vr::f32_to_bf16 / bf16_to_f32.
struct bf16 {
  uint16_t bits;
};

// ---- RMSNorm (ops/norm.h) ------------------------------------------------------------------------------
// out = weight * inp * rstd, rstd[n] = 1/sqrt(mean(inp^2) + eps) (rstd may be null).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps, Stream s = nullptr);
void rmsnorm_forward(bf16* out, float* rstd, const bf16* inp, const bf16* weight, int64_t N, int64_t C, float eps,
                     Stream s = nullptr);
// dinp += ..., dweight += ... (fp32, summed over rows with atomics: not bit-reproducible run to run).
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C, Stream s = nullptr);
void rmsnorm_backward(bf16* dinp, float* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int64_t N, int64_t C, Stream s = nullptr);

// ---- RoPE, rotate-half, in place (ops/rope.h): x [T, H, D] row stride `stride`, tables fp32 [T, D] -------
void rope_forward(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
                  Stream s = nullptr);
void rope_forward(bf16* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
                  Stream s = nullptr);
void rope_backward(float* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
                   Stream s = nullptr);
void rope_backward(bf16* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
                   Stream s = nullptr);

// ---- SwiGLU (ops/activation.h): out = silu(gate) * up; backward writes dgate, dup (either may be null) ----
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, Stream s = nullptr);
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int64_t n, Stream s = nullptr);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     Stream s = nullptr);
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int64_t n,
                     Stream s = nullptr);

// ---- fused cross-entropy, forward + backward in one pass over the logits --------------------------------
// logits [N, V]; targets [N] (ignore_index rows: loss 0, gradient 0). losses[n] = logsumexp(logits[n]) -
// logits[n, target]. dlogits (may alias logits, may be null) = grad_scale * (softmax(logits[n]) - onehot).
// One block per row: no probability tensor beyond the row being processed ever exists.
void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                    int64_t N, int64_t V, float grad_scale, int32_t ignore_index = -100,
                                    Stream s = nullptr);
void cross_entropy_forward_backward(float* losses, bf16* dlogits, const bf16* logits, const int32_t* targets,
                                    int64_t N, int64_t V, float grad_scale, int32_t ignore_index = -100,
                                    Stream s = nullptr);

// ---- AdamW (torch.optim.AdamW maths) ---------------------------------------------------------------------
// p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// with g = grad_scale * grad and t = step (1-based). fp32 master weights and moments; param_bf16 (optional)
// receives the updated weights rounded to bf16 for the next forward pass.
struct AdamWConfig {
  float lr = 1e-5f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.1f;
  int64_t step = 1;
  float grad_scale = 1.0f;
};
void adamw_step(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWConfig& cfg,
                bf16* param_bf16 = nullptr, Stream s = nullptr);
void adamw_step(float* param, float* m, float* v, const bf16* grad, int64_t n, const AdamWConfig& cfg,
                bf16* param_bf16 = nullptr, Stream s = nullptr);

// ---- flash-style attention (ops/attention.h) -------------------------------------------------------------
// q [Tq, Hq, D], k/v [Tk, Hkv, D], out [Tq, Hq, D] with row strides in elements; lse [Hq, Tq] fp32.
// cu_q/cu_k are DEVICE arrays [nseq+1]; max_seqlen_q/k are their largest segment lengths (host-side, they size
// the grid). GQA, bottom-right causal mask, rows that see no key: out 0, lse -inf. Scalar fp32 arithmetic
// (no tensor cores yet); D <= 256, with specialised paths for 80 and 128.
struct AttnArgs {
  int Hq = 0, Hkv = 0, D = 0;
  float scale = 1.0f;
  bool causal = false;
  int nseq = 0;
  const int32_t* cu_q = nullptr;
  const int32_t* cu_k = nullptr;
  int max_seqlen_q = 0, max_seqlen_k = 0;
  int64_t total_q = 0;  // = cu_q[nseq], the rows of q and out (lse is [Hq, total_q])
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, o_stride = 0;
};
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttnArgs& a,
                       Stream s = nullptr);
void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                       Stream s = nullptr);
// dq, dk, dv (layouts and strides of q, k, v) are accumulated (+=), as on the CPU. Needs out and lse.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttnArgs& a, Stream s = nullptr);
void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* out, const float* lse,
                        const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s = nullptr);

// ---- BCM / DAC cross-attention (method.md §6): a few queries against N keys per item ----------------------
// q [L, Nq, H*D] (row stride q_stride), k/v [L, N, H*D] (row strides k_stride, v_stride), out [L, Nq, H*D]
// contiguous, key_pad [L, N] (nonzero = padding; may be null), lse [L, H, Nq] fp32,
// probs_mean [L, Nq, N] fp32 = softmax probabilities averaged over heads (may be null; 0 on padded keys).
// An item whose keys are all padding gets out 0, lse -inf, probs 0 (PyTorch would give NaN).
struct CrossAttnArgs {
  int L = 0, Nq = 0, N = 0, H = 0, D = 0;
  float scale = 1.0f;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
};
void cross_attention_forward(float* out, float* lse, float* probs_mean, const float* q, const float* k,
                             const float* v, const uint8_t* key_pad, const CrossAttnArgs& a, Stream s = nullptr);
void cross_attention_forward(bf16* out, float* lse, float* probs_mean, const bf16* q, const bf16* k, const bf16* v,
                             const uint8_t* key_pad, const CrossAttnArgs& a, Stream s = nullptr);
// Gradients of sum(dout * out) + sum(dprobs_mean * probs_mean) (dprobs_mean may be null), accumulated (+=)
// into dq, dk, dv (dk/dv rows of padded keys get 0).
void cross_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* dprobs_mean,
                              const float* out, const float* lse, const float* q, const float* k, const float* v,
                              const uint8_t* key_pad, const CrossAttnArgs& a, Stream s = nullptr);
void cross_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* dprobs_mean,
                              const bf16* out, const float* lse, const bf16* q, const bf16* k, const bf16* v,
                              const uint8_t* key_pad, const CrossAttnArgs& a, Stream s = nullptr);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
