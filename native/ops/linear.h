// Linear layers (GEMM): out[M,N] = inp[M,K] @ W[N,K]^T (+ bias), forward and backward.
// W keeps the safetensors Linear layout [out, in]. The weight's dtype picks the precision:
//   F32  -> fp32 GEMM;
//   BF16 -> inputs rounded to bf16, fp32 accumulation and fp32 output (oneDNN: AMX or AVX-512-BF16,
//           whichever the CPU has; the built-in fallback does the same maths without oneDNN).
// Activations are always fp32 in memory on the CPU backend.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"

namespace vr {

namespace cpu {
struct PackedWeight;
}

struct Linear {
  DType dtype = DType::F32;        // F32 or BF16
  int64_t N = 0, K = 0;            // out features, in features
  const void* w = nullptr;         // N*K elements, row-major [N, K]
  const float* b = nullptr;        // optional bias [N], fp32
  // Backend-private cache (prepacked weights, oneDNN primitives keyed by M). Filled lazily; not shared
  // between threads that run GEMMs on the same Linear at the same time. The CPU backend leaves it empty:
  // its oneDNN primitives are cached process-wide by shape (every layer of a shape shares one), and weights
  // are used in place, never pre-packed (a packed copy would double the 16.6 GB of 7B weights).
  mutable std::shared_ptr<void> backend;
  // Inference only: w reordered once into the CPU GEMM's native blocked layout (linear_prepack). When set, the
  // forward reads it instead of w (w stays a valid pointer: it may be used by slow paths, and re-faults its
  // pages if the owner released them). Training never packs.
  std::shared_ptr<const cpu::PackedWeight> packed;
};

// Packs a BF16 Linear's weight for inference (see cpu/packed_weight.h). Returns false, leaving L unchanged,
// when there is nothing to gain: not BF16, oneDNN not built in, or VREFLECT_PACK_WEIGHTS=0. `consumed`, when
// given, is called for parts of w that packing has finished reading (the owner may release their pages).
bool linear_prepack(Linear& L, void (*consumed)(const void* p, size_t bytes) = nullptr);

// out[M,N] = inp[M,K] @ W^T + b. With accumulate=true the result is added to out (residual fusion).
// `padded` (BF16 weights, prefill): out has linear_padded_rows(M) rows, so the GEMM writes its padded rows in place
// instead of through scratch (their contents are junk; accumulate adds junk to them).
void linear_forward(float* out, const float* inp, const Linear& L, int64_t M, bool accumulate = false,
                    bool padded = false);

// The same with the input already rounded to bf16 (BF16 weights only, else a vr::Error): a layer rounds its
// normalised input once for all the GEMMs that read it (q/k/v, gate/up) instead of once per GEMM.
// `padded`: out and inp16 both have linear_padded_rows(M) rows (inp16's extra rows finite, e.g. zeros).
void linear_forward_bf16in(float* out, const uint16_t* inp16, const Linear& L, int64_t M, bool accumulate = false,
                           bool padded = false);
// Rows a BF16 GEMM of M rows really runs on: oneDNN's bf16 kernels run some row counts 10-25% slower than the next
// multiple of 8, so M >= 64 is rounded up (VREFLECT_GEMM_PAD_M). Buffers of this many rows let `padded` skip copies.
int64_t linear_padded_rows(int64_t M);
// The gated MLP's gate and up GEMMs with the SwiGLU in their epilogues (inference, BF16 weights, bf16 in and out):
//   silu16 = bf16(silu(x16 Wg^T + bg)),  act16 = bf16((x16 Wu^T + bu) * silu16)
// x16 [M, K], silu16 and act16 [M, F], each allocated with linear_padded_rows(M) rows (x16's extra rows finite).
// Returns false, writing nothing, where this path does not run (no oneDNN, decode-sized M, the built-in GEMM forced,
// or oneDNN cannot fuse the epilogue): the caller then runs gate, up and swiglu_forward_bf16 itself.
bool swiglu_gemms_bf16(uint16_t* act16, uint16_t* silu16, const uint16_t* x16, const Linear& gate, const Linear& up,
                       int64_t M);
// dst = bf16 bits of src (round to nearest even, as f32_to_bf16): the rounding linear_forward does for BF16
// weights, done once by the caller.
void round_to_bf16(uint16_t* dst, const float* src, int64_t n);

// Which outputs of linear_backward are overwritten (= instead of +=); their old contents are then never read.
// For a first contribution the caller knows lands on zeros this skips a read of the whole output (for a 7B MLP
// weight gradient, 271 MB per GEMM: ~15% of that GEMM's time) and the zero fill before it. dweight covers dbias.
struct GradOverwrite {
  bool dinp = false;
  bool dweight = false;
};

// Backward (training): dinp[M,K] += dout @ W; dweight[N,K] += dout^T @ inp; dbias[N] += sum_m dout
// (= instead of += for the outputs `overwrite` names). Any of dinp, dweight, dbias may be null to skip it.
// Gradients are fp32. Same rounding contract as the forward: with BF16 weights, dout (and inp, for dweight)
// are rounded to bf16 and products accumulate in fp32; dbias is an fp32 sum of the unrounded dout.
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const Linear& L, int64_t M, GradOverwrite overwrite = {});

// Human-readable name of the GEMM path that runs for this dtype on this machine
// (e.g. "onednn-bf16(brg:avx512_core_amx)", "onednn-bf16(brg:avx512_core_bf16)+gemv-avx512_bf16",
// "builtin-f32"). "+gemv-..." means decode-shaped calls (M <= 4) use the hand-written AVX-512-BF16 GEMV.
const char* linear_backend_name(DType dtype);

}  // namespace vr
