// Host API of the CUDA kernels (native/cuda/kernels/*.cu). Plain C++: no CUDA header is needed to call them.
//
// Every pointer is device memory. The maths and layouts follow the CPU twins in native/ops/*.h; each function
// says where it differs. Storage is fp32 or bf16 (overloads); arithmetic is always fp32. Arguments are checked
// on the host (vr::Error with a one-line message); a failed launch throws vr::Error naming the kernel.
//
// The same source is compiled twice: by nvcc for the GPU, and by g++ against the CPU emulator (native/cuda_emu)
// for tests. An inline namespace keeps the two builds' symbols apart, so both can live in one program.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "train/latent_losses.h"

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
// receives the updated weights rounded to bf16 for the next forward pass. The hyperparameters are doubles (torch's
// Python floats): the kernel's fp32 scalars (1 - b1, 1 - b2, lr / (1 - b1^t), ...) are derived in double and rounded
// once, as the CPU AdamW (train/adamw.cc) does, so the two agree up to the rounding of the elementwise maths.
struct AdamWConfig {
  double lr = 1e-5, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1;
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
// the grid). GQA, bottom-right causal mask, rows that see no key: out 0, lse -inf. D <= 256.
// Two kernel paths (AttnKernelPath): the scalar one (fp32 arithmetic on CUDA cores, fp32 and bf16 storage, any
// D <= 256, specialised for 80 and 128) and the tensor-core forward and backward (attention_tc.cu: mma.sync
// m16n8k16 bf16 -> fp32, bf16 storage, D <= 128, tiles padded to 32 / 64 / 80 / 128 columns).
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
// The CUDA backend's environment switches (VREFLECT_ATTENTION, VREFLECT_ATTENTION_TILE_FWD / _BWD / _WGMMA /
// _WGMMA_BWD, VREFLECT_ELEMENTWISE, VREFLECT_GEMM, VREFLECT_GEMV) are each read once, at first use, and kept
// (env_switch.h); a bad value is a one-line vr::Error naming the allowed values. env_switches_changed() makes every
// one of them read its variable again at its next use: the one reset for tests and the bench that setenv.
void env_switches_changed();

// Which kernels run (forward and backward alike). Auto defers to VREFLECT_ATTENTION=auto|tc|scalar (read once;
// auto when unset), then: tensor cores on an sm_80+ GPU for bf16 storage and D <= 128, the scalar kernel otherwise and always on the CPU
// emulator (speed). TensorCore (or VREFLECT_ATTENTION=tc) where there is no such path is a vr::Error; on the
// emulator it runs the tensor-core kernel with the modelled mma instruction (mma.cuh).
// Wgmma (VREFLECT_ATTENTION=wgmma): the Hopper forward (attention_wgmma.cu, wgmma.mma_async, bf16, D <= 128; the
// backward of that path runs the mma.sync kernels). Auto takes it on an sm_90 GPU for 64 < D <= 128 only when the
// build has sm_90a code AND the one-time self-check on the device passed (attention_wgmma_state); forced on a
// device without it: a vr::Error. On the emulator, Wgmma runs the modelled instruction (wgmma.cuh); Auto never.
// `s`: the stream of the call (the self-check does not run while it is being captured into a graph).
enum class AttnKernelPath { Auto, Scalar, TensorCore, Wgmma };
AttnKernelPath attention_kernel_resolve(AttnKernelPath want, int D, bool bf16_storage, Stream s = nullptr);
const char* attention_kernel_path_name(AttnKernelPath path);  // "auto", "scalar", "tensor-core", "wgmma"
// Tile-shape variants of the tensor-core kernels for head dims 81..128 (attention_tc.cu; smaller D keep the
// default shape): names "<rows>x<keys>w<warps>". VREFLECT_ATTENTION_TILE_FWD / _BWD name one (read once; another
// value is a vr::Error naming the allowed ones; a named backward variant over this GPU's shared memory is a one-line
// error at its launch). "auto" or unset: the first variant of a preference list (attention_tc_tile_preference)
// whose shared memory fits the current device's opt-in limit per block (cudaDevAttrMaxSharedMemoryPerBlockOptin),
// so the default never refuses a GPU. attention_tc_tile: the one the next call runs on the current device (reads
// and checks the variable); attention_tc_tile_at: the one it runs on a device that allows `smem_optin_bytes` (doctor).
std::vector<std::string> attention_tc_tiles(bool backward);
std::string attention_tc_tile(bool backward);
std::string attention_tc_tile_at(bool backward, size_t smem_optin_bytes);
std::vector<std::string> attention_tc_tile_preference(bool backward);
// Tests: replace the compiled-in preference (names must be variants, else a vr::Error); empty restores it.
void attention_tc_set_tile_preference(bool backward, const std::vector<std::string>& names);
// The wgmma forward's tile variants ("<rows>x<keys>wg<warpgroups>", first = default), picked by
// VREFLECT_ATTENTION_TILE_WGMMA (read once; a bad name is a vr::Error). All fit sm_90's 227 KiB: auto = the first.
std::vector<std::string> attention_wgmma_tiles();
std::string attention_wgmma_tile();
// The wgmma backward's block shapes ("128x64wg2" = default, "64x64wg1"), picked by VREFLECT_ATTENTION_TILE_WGMMA_BWD
// (read once; a bad name is a vr::Error); that variable's "tc" (attention_wgmma_backward_tile() == "tc")
// sends the wgmma path's backward to the mma.sync kernels.
std::vector<std::string> attention_wgmma_backward_tiles();
std::string attention_wgmma_backward_tile();
// Whether the current device can run the wgmma forward: checked once per device (an sm_90a image probe, then the
// probe GEMM against a host product; a mismatch prints one line to stderr). Unchecked: not yet, and `s` is being
// captured (no launches / copies allowed then).
enum class WgmmaState { Unchecked = 0, Ready = 1, NoImage = 2, CheckFailed = 3 };
WgmmaState attention_wgmma_state(Stream s = nullptr);
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttnArgs& a,
                       Stream s = nullptr, AttnKernelPath path = AttnKernelPath::Auto);
void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                       Stream s = nullptr, AttnKernelPath path = AttnKernelPath::Auto);
// dq, dk, dv (layouts and strides of q, k, v) are accumulated (+=), as on the CPU. Needs out and lse.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttnArgs& a, Stream s = nullptr,
                        AttnKernelPath path = AttnKernelPath::Auto);
void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* out, const float* lse,
                        const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s = nullptr,
                        AttnKernelPath path = AttnKernelPath::Auto);

// Test probe of the tensor-core fragment loads (mma_probe.cu): one warp writes out[lane * 24 + i], i < 24, the
// registers of ldmatrix-based and 4-byte fragment loads of the same 16 x 16 bf16 tile (element [r][c] = r * 16 + c):
// A (i 0-3 ldmatrix, 4-7 reference), B from [n][k] (8-11, 12-15), B from [k][n] via .trans (16-19, 20-23).
// Needs an sm_80+ GPU or the emulator.
void mma_fragment_probe(uint32_t* out, Stream s = nullptr);
// Test probe of cp.async (mma_probe.cu): src holds 256 bf16; out[161] (layout in mma_probe.cu).
void cp_async_probe(uint32_t* out, const bf16* src, Stream s = nullptr);
// Test probe / self-check of the Hopper wgmma building blocks (wgmma_probe.cu): one warpgroup computes
// d[64][n] = (accumulate_c ? c : 0) + a[64][k] b[k][n] (row-major; bf16 a, b; fp32 c, d) by wgmma m64nNk16 with A in
// registers or shared memory and B K-major or MN-major; n = 32, 64, 128, k a multiple of 16 up to 64. Needs an
// sm_90a kernel image (or the emulator): elsewhere the kernel is a stub that leaves d unwritten.
void wgmma_probe_gemm(float* d, const bf16* a, const bf16* b, const float* c, int n, int k, bool a_in_registers,
                      bool b_mn_major, bool accumulate_c, Stream s = nullptr);
// Whether the current device runs kernels with the wgmma path compiled in (an sm_90a image, or the emulator): one
// tiny launch; false on sm_80 images, plain sm_90 images and launch failures.
bool wgmma_image_available();

// ---- split-KV decode attention ("flash-decoding", attention_decode.cu) ---------------------------------
// attention_forward's semantics (AttnArgs: GQA, bottom-right causal, out 0 / lse -inf for rows that see no key)
// for ONE segment of Tq = max_seqlen_q = total_q <= kMaxDecodeRows new rows after the cached keys, bf16 only.
// The keys are cut into `splits` contiguous ranges of ceil(keys / splits) (the key count read on the device from
// cu_k: the launch depends on `splits` only, so a CUDA graph replays it for any cache length); each block owns
// one range of one KV head and serves all Hq / Hkv query heads of its group ((Hq / Hkv) * Tq <=
// kMaxDecodeGroupRows rows), so the cache is read once per call. Partial softmax states go to `workspace` (fp32, attention_decode_workspace_floats(Hq, Tq, D, splits)
// floats at least); a second kernel merges them per (head, row) in split order into out and lse (lse [Hq, Tq],
// may be null). Deterministic: no atomics.
constexpr int kMaxDecodeRows = 8, kMaxDecodeGroupRows = 64, kMaxDecodeSplits = 256;
constexpr int kDecodeBlocksPerSM = 4;          // split blocks wanted per SM (latency hiding for the loads)
constexpr int kDecodeMinKeysPerSplit = 256;    // a split below this spends more on its partials than on keys
// Split count: enough blocks for kDecodeBlocksPerSM per SM over the Hkv heads, but no split under
// kDecodeMinKeysPerSplit keys, and 1..kMaxDecodeSplits.
int attention_decode_splits(int64_t keys, int Hkv, int sms);
size_t attention_decode_workspace_floats(int Hq, int Tq, int D, int splits);
// SMs of the current device (cached per process); the emulator reports an H100's 132.
int device_sm_count();
void attention_decode(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                      int splits, float* workspace, size_t workspace_floats, Stream s = nullptr);

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


// ---- LayerNorm (ops/norm.h): the BCM / DAC heads' output norm --------------------------------------------
// out = (inp - mean) * rstd * weight + bias (bias may be null); mean, rstd [N] fp32 (either may be null).
// Two-pass statistics per row, as on the CPU. (The ViT merger's ln_q is an RMSNorm: rmsnorm_forward.)
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps, Stream s = nullptr);
void layernorm_forward(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight, const bf16* bias,
                       int64_t N, int64_t C, float eps, Stream s = nullptr);
// dinp += ..., dweight += sum_n dout * xhat, dbias += sum_n dout (any of the three may be null; the parameter
// gradients are fp32). Parameter gradients are summed over rows in row order by one owner thread per column:
// deterministic, no atomics.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C,
                        Stream s = nullptr);
void layernorm_backward(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                        const bf16* weight, const float* mean, const float* rstd, int64_t N, int64_t C,
                        Stream s = nullptr);

// ---- latent losses (train/latent_losses.h, method.md §8.3, §9.3, §10.1) ------------------------------------
// A loss value lands in device memory as a LossValue. Values are summed in fp64 (as on the CPU) in a fixed
// order - per-block partial sums, then one block - so they are bit-identical run to run; no float atomics.
struct LossValue {
  double value;       // the loss; NaN when nonfinite > 0 or bad >= 0 (the CPU trainer skips the term then)
  int32_t nonfinite;  // align / mse: inputs that are NaN or +-inf (the CPU's all_finite guard); kl: 0
  int32_t bad;        // kl: first box whose token indices are invalid (the CPU throws there), else -1
};
// Stage 1, symmetric decoupled MSE: value MSE(clamp(H), clamp(Z)) with clamp to [-1e4, 1e4].
void align_value(LossValue* out, const float* H, const float* Z, int64_t n, Stream s = nullptr);
void align_value(LossValue* out, const bf16* H, const bf16* Z, int64_t n, Stream s = nullptr);
// dH += w (Hc - Zc) / n where H is inside the clamp, dZ -= the same where Z is (either may be null).
void align_grad(float* dH, float* dZ, const float* H, const float* Z, int64_t n, float w, Stream s = nullptr);
void align_grad(bf16* dH, bf16* dZ, const bf16* H, const bf16* Z, int64_t n, float w, Stream s = nullptr);
// Stage 2, MSE(a, sg b) and da += w * 2 (a - b) / n.
void mse_value(LossValue* out, const float* a, const float* b, int64_t n, Stream s = nullptr);
void mse_value(LossValue* out, const bf16* a, const bf16* b, int64_t n, Stream s = nullptr);
void mse_grad(float* da, const float* a, const float* b, int64_t n, float w, Stream s = nullptr);
void mse_grad(bf16* da, const bf16* a, const bf16* b, int64_t n, float w, Stream s = nullptr);
// Stage 2 attention transfer, vr::AttnTransfer with DEVICE arrays: the student's head-averaged map A of box b
// at a_off[b] ([nq, S_b]), the teacher's At at t_off[b] ([nq, N_b]), local_idx[cu_box[b] + j] = the student
// position of the box's token j. KL = sum T (log T - log(A + 1e-9)) / nb over T > 0, T the teacher scattered to
// student positions (assignment: a repeated position keeps its last token, as on the CPU). The maps are fp32
// (the probabilities cross_attention_forward writes), so there is no bf16 overload.
struct KlArgs : vr::AttnTransfer {  // the CPU's fields (train/latent_losses.h), device pointers here
  int64_t a_total = 0;  // = a_off[nb] (host copy: sizes the position -> token scratch map)
};
void kl_value(LossValue* out, const KlArgs& t, Stream s = nullptr);
// dA (layout of A) += w * dKL/dA = -w T / (A + 1e-9) / nb; boxes with invalid indices are skipped.
void kl_grad(float* dA, const KlArgs& t, float w, Stream s = nullptr);

// ---- embedding (ops/embedding.h) and the row scatters of the input embeddings ---------------------------
// Ids and rows live on the device, so the host cannot check them before a launch: index_check writes the first
// position i with idx[i] outside [lo, hi) to *first_bad (-1 when all are inside); the trainer checks it as the
// CPU op checks its ids. The kernels below skip (embedding_forward: write zeros for) out-of-range indices.
void index_check(int32_t* first_bad, const int32_t* idx, int64_t n, int64_t lo, int64_t hi, Stream s = nullptr);
// out[t, :] = table[ids[t], :], table [V, C].
void embedding_forward(float* out, const int32_t* ids, int64_t T, const float* table, int64_t V, int64_t C,
                       Stream s = nullptr);
void embedding_forward(bf16* out, const int32_t* ids, int64_t T, const bf16* table, int64_t V, int64_t C,
                       Stream s = nullptr);
// dtable[ids[t], :] += dout[t, :] (fp32 gradient table). Each row is owned by its id's first occurrence, which
// adds that id's rows in token order: the CPU op's exact sums, no atomics, no sort.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t V, int64_t C,
                        Stream s = nullptr);
void embedding_backward(float* dtable, const bf16* dout, const int32_t* ids, int64_t T, int64_t V, int64_t C,
                        Stream s = nullptr);
// rows[j] = position of the j-th occurrence of token_id in ids (at most max_rows written), *count = all
// occurrences (the <|image_pad|> rows the visual features fill, in order). One block, ordered compaction.
void token_rows(int32_t* rows, int32_t* count, const int32_t* ids, int64_t T, int32_t token_id, int64_t max_rows,
                Stream s = nullptr);
// x[rows[i], :] = src[i, :] for i < n (x [T, D]; rows distinct): visual features into the <|image_pad|> rows,
// latent states into the <|lvr|> rows.
void scatter_rows(float* x, const float* src, const int32_t* rows, int64_t n, int64_t D, int64_t T,
                  Stream s = nullptr);
void scatter_rows(bf16* x, const bf16* src, const int32_t* rows, int64_t n, int64_t D, int64_t T,
                  Stream s = nullptr);
// Backward: dsrc[i, :] += dx[rows[i], :] (dsrc may be null), then dx[rows[i], :] = 0 (an overwritten embedding
// row gets no gradient).
void scatter_rows_backward(float* dsrc, float* dx, const int32_t* rows, int64_t n, int64_t D, int64_t T,
                           Stream s = nullptr);
void scatter_rows_backward(bf16* dsrc, bf16* dx, const int32_t* rows, int64_t n, int64_t D, int64_t T,
                           Stream s = nullptr);

// ---- KV-cache append (model/kv_cache.h layout: per layer, rows [capacity, row = kv_heads * head_dim]) -------
// k_cache[pos + t, :] = k_new[t, :] (row stride k_stride), v likewise, t < T; keys arrive after RoPE. Either
// pair may be null. The f32 -> bf16 overload rounds to nearest even. Inference only: no backward.
void kv_append(float* k_cache, float* v_cache, const float* k_new, const float* v_new, int64_t pos, int64_t T,
               int64_t row, int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s = nullptr);
void kv_append(bf16* k_cache, bf16* v_cache, const bf16* k_new, const bf16* v_new, int64_t pos, int64_t T,
               int64_t row, int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s = nullptr);
void kv_append(bf16* k_cache, bf16* v_cache, const float* k_new, const float* v_new, int64_t pos, int64_t T,
               int64_t row, int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s = nullptr);
// The same with the first row's position read from DEVICE memory (*pos, int32) when the kernel runs, so a captured
// CUDA graph appends at the cache length of each replay. The caller checks pos + T <= capacity.
void kv_append_at(bf16* k_cache, bf16* v_cache, const bf16* k_new, const bf16* v_new, const int32_t* pos, int64_t T,
                  int64_t row, int64_t k_stride, int64_t v_stride, Stream s = nullptr);

// ---- exact erf GELU (ops/activation.h; the ViT merger's activation, model.md) ------------------------------
// out = 0.5 z (1 + erf(z / sqrt 2)), out may alias inp. The backward WRITES dinp (may alias dout).
void gelu_forward(float* out, const float* inp, int64_t n, Stream s = nullptr);
void gelu_forward(bf16* out, const bf16* inp, int64_t n, Stream s = nullptr);
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, Stream s = nullptr);
void gelu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, Stream s = nullptr);

// ---- greedy decoding step (model/qwen_vl.cc Session::generate) --------------------------------------------
// next[n] = argmax_i score(logits[n, i]) for each of N rows, lowest id on ties, where score applies the HF
// repetition penalty to the ids with seen[n, i] != 0 (s < 0 ? s * penalty : s / penalty; seen may be null).
// NaN scores never win, except at id 0 (the CPU's sequential scan keeps a NaN first element). With mark_seen,
// seen[n, next[n]] = 1 afterwards, so a decode loop keeps its penalty view on the device.
void greedy_next_token(int32_t* next, uint8_t* seen, const float* logits, int64_t N, int64_t V, float penalty,
                       bool mark_seen, Stream s = nullptr);
void greedy_next_token(int32_t* next, uint8_t* seen, const bf16* logits, int64_t N, int64_t V, float penalty,
                       bool mark_seen, Stream s = nullptr);

// --- 16-byte paths of the memory-bound kernels (elementwise_vec.cuh) ---
// VREFLECT_ELEMENTWISE: auto (default) / vector: swiglu, gelu, rope, rmsnorm, cross_entropy, scatter_rows, kv_append,
// adamw and convert move 8 elements per 16-byte access where pointers and sizes allow; scalar: the one-element
// kernels everywhere (the fallback for a first GPU run, the bench's baseline). Read once, like the other switches
// (env_switches_changed reads it again); a bad value is a vr::Error naming the allowed values.
bool elementwise_vector_enabled();
// How many calls took a 16-byte path so far (the tests and the bench check which path ran).
int64_t elementwise_vector_calls();

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
