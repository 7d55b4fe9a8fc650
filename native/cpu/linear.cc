// Linear layers on the CPU: picks oneDNN, the AVX-512-BF16 GEMV (decode, M == 1) or the built-in GEMM.
//
// Rounding contract (ops/linear.h): F32 weights -> fp32 GEMM; BF16 weights -> activations rounded to bf16
// (RNE), fp32 accumulation. The backward pass keeps the same contract: with BF16 weights, dout (and inp for
// dweight) are rounded to bf16 and products are accumulated in fp32.
//
// Weights are used in place (the mmapped [N, K] checkpoint layout, oneDNN "ba") unless an inference session
// packed them (linear_prepack, cpu/packed_weight.h): then prefill GEMMs and the decode GEMV read the packed copy,
// and the owner released the mmapped pages, so memory stays ~ one copy of the weights. Training never packs.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/grow.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"
#include "cpu/gemm_builtin.h"
#include "cpu/gemv_bf16.h"
#include "cpu/onednn_gemm.h"
#include "cpu/op_profile.h"
#include "cpu/simd.h"

namespace vr::cpu {

namespace {

VR_CLONES void round_to_bf16(uint16_t* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

void round_to_bf16_f32(float* dst, const float* src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(f32_to_bf16(src[i]));
}

// dst[c, r] = bf16(src[r, c]) for an R x C fp32 matrix: rounding and transposing in one pass.
void round_to_bf16_transposed(uint16_t* dst, const float* src, int64_t R, int64_t C) {
  const int64_t B = 64;
#pragma omp parallel for collapse(2) schedule(static) if (R * C > (1 << 16))
  for (int64_t c0 = 0; c0 < C; c0 += B)
    for (int64_t r0 = 0; r0 < R; r0 += B) {
      const int64_t c1 = std::min(C, c0 + B), r1 = std::min(R, r0 + B);
      for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r1; r++) dst[c * R + r] = f32_to_bf16(src[r * C + c]);
    }
}

// dst[c, r] = src[r, c] for an R x C matrix (both dense).
template <class T>
void transpose(T* dst, const T* src, int64_t R, int64_t C) {
  const int64_t B = 32;
#pragma omp parallel for collapse(2) schedule(static) if (R * C > (1 << 16))
  for (int64_t r0 = 0; r0 < R; r0 += B)
    for (int64_t c0 = 0; c0 < C; c0 += B)
      for (int64_t r = r0; r < std::min(R, r0 + B); r++)
        for (int64_t c = c0; c < std::min(C, c0 + B); c++) dst[c * R + r] = src[r * C + c];
}

std::atomic<int> g_path{int(GemmPath::Auto)};

bool use_onednn() {
  const GemmPath p = gemm_path();
  return onednn_available() && (p == GemmPath::Auto || p == GemmPath::OneDnn);
}

void check_dtype(const Linear& L) {
  VR_CHECK(L.dtype == DType::F32 || L.dtype == DType::BF16, "linear: weight dtype ", dtype_name(L.dtype),
           " is not supported (F32 or BF16)");
}

}  // namespace

void set_gemm_path(GemmPath p) { g_path.store(int(p)); }
GemmPath gemm_path() { return GemmPath(g_path.load()); }

namespace {

std::string gemm_label(const Linear& L, int64_t M) {
  if (!prof::enabled()) return "";
  return std::string(L.dtype == DType::F32 ? "gemm f32 " : "gemm bf16 ") + std::to_string(M) + "x" +
         std::to_string(L.N) + "x" + std::to_string(L.K);
}

// The BF16-weight forward. The input comes either as fp32 (`inp`, rounded here) or already rounded (`inp16`).
// oneDNN's bf16 brgemm runs some row counts 10-25% slower than the next multiple of 8 (2 threads, Zen 5: M = 305
// at 892 GFLOP/s, 312 at 1014; 1073 at 773, 1080 at 1008), so GEMMs of 64 rows or more pad M with zero rows.
// VREFLECT_GEMM_PAD_M=<multiple> sets the rounding (1 = off). Callers whose buffers already have the padded row
// count say so (`padded`) and skip the copies.
}  // namespace

int64_t gemm_padded_rows(int64_t M) {
  static const int64_t q = [] {
    const char* e = std::getenv("VREFLECT_GEMM_PAD_M");
    const long v = e ? std::strtol(e, nullptr, 10) : 8;
    return int64_t(v >= 1 && v <= 256 ? v : 8);
  }();
  if (M < 64 || q <= 1) return M;
  return (M + q - 1) / q * q;
}

namespace {

bool gemv_runs(int64_t M, const Linear& L) {
  const GemmPath path = gemm_path();
  const PackedWeight* P = L.packed.get();
  return M <= gemv_bf16_max_rows() && gemv_bf16_available() && (path == GemmPath::Auto || path == GemmPath::Gemv) &&
         (!P || P->vnni64);
}

// `padded`: out (and inp16, when given) have gemm_padded_rows(M) rows, so the padded GEMM runs in place.
void linear_forward_bf16_weights(float* out, const float* inp, const uint16_t* inp16, const Linear& L, int64_t M,
                                 bool accumulate, bool padded) {
  const int64_t N = L.N, K = L.K;
  const uint16_t* W = static_cast<const uint16_t*>(L.w);
  const PackedWeight* P = L.packed.get();
  if (gemv_runs(M, L)) {
    static thread_local std::vector<float> wide;
    if (!inp) {  // the GEMV rounds its (tiny) input itself; bf16 -> fp32 -> bf16 is exact
      inp = grow(wide, M * K);
      convert_to_f32(wide.data(), inp16, DType::BF16, size_t(M * K));
    }
    if (P) gemv_bf16_packed(out, inp, *P, L.b, M, accumulate);
    else gemv_bf16(out, inp, W, L.b, M, N, K, accumulate);
    return;
  }
  if (use_onednn()) {
    const int64_t Mp = gemm_padded_rows(M);
    if (!inp16 || (Mp != M && !padded)) {
      static thread_local std::vector<uint16_t> abuf;
      uint16_t* a16 = grow(abuf, Mp * K);
      if (inp16) {
        std::memcpy(a16, inp16, size_t(M * K) * sizeof(uint16_t));
      } else {
        prof::Scope cvt("~ gemm input fp32->bf16 (inside gemm rows)");
        round_to_bf16(a16, inp, M * K);
      }
      std::memset(a16 + M * K, 0, size_t((Mp - M) * K) * sizeof(uint16_t));
      inp16 = a16;
    }
    MatmulArgs a;
    a.M = Mp; a.N = N; a.K = K; a.bf16 = true;
    a.A = inp16; a.a_rs = K; a.a_cs = 1;
    a.B = W; a.b_rs = 1; a.b_cs = K;
    a.b_packed = P;
    a.bias = L.b;
    if (Mp == M || padded) {
      a.C = out; a.ldc = N; a.accumulate = accumulate;
      onednn_matmul(a);
      return;
    }
    // Padded rows: the product goes to scratch, its first M rows into `out` (added when accumulating).
    static thread_local std::vector<float> cbuf;
    float* c = grow(cbuf, Mp * N);
    a.C = c; a.ldc = N; a.accumulate = false;
    onednn_matmul(a);
    prof::Scope cp("~ gemm padded rows -> out");
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
      float* o = out + m * N;
      const float* r = c + m * N;
      if (accumulate)
        for (int64_t n = 0; n < N; n++) o[n] += r[n];
      else
        std::memcpy(o, r, size_t(N) * sizeof(float));
    }
  } else {
    static thread_local std::vector<float> abuf;
    float* ar = grow(abuf, M * K);
    if (inp16) convert_to_f32(ar, inp16, DType::BF16, size_t(M * K));
    else round_to_bf16_f32(ar, inp, M * K);
    gemm_nt_bf16(M, N, K, ar, K, W, K, out, N, L.b, accumulate);
  }
}

}  // namespace

void linear_forward(float* out, const float* inp, const Linear& L, int64_t M, bool accumulate, bool padded) {
  check_dtype(L);
  if (M == 0 || L.N == 0) return;
  const int64_t N = L.N, K = L.K;
  prof::Scope scope(gemm_label(L, M), 2.0 * double(M) * double(N) * double(K));
  if (L.dtype == DType::BF16) return linear_forward_bf16_weights(out, inp, nullptr, L, M, accumulate, padded);
  if (use_onednn()) {
    MatmulArgs a;
    a.M = M; a.N = N; a.K = K; a.bf16 = false;
    a.A = inp; a.a_rs = K; a.a_cs = 1;
    a.B = L.w; a.b_rs = 1; a.b_cs = K;
    a.C = out; a.ldc = N; a.bias = L.b; a.accumulate = accumulate;
    onednn_matmul(a);
  } else {
    gemm_nt_f32(M, N, K, inp, K, static_cast<const float*>(L.w), K, out, N, L.b, accumulate);
  }
}

void linear_forward_bf16in(float* out, const uint16_t* inp16, const Linear& L, int64_t M, bool accumulate,
                           bool padded) {
  VR_CHECK(L.dtype == DType::BF16, "linear_forward_bf16in: the weight is ", dtype_name(L.dtype),
           ", a bf16 input needs BF16 weights");
  if (M == 0 || L.N == 0) return;
  prof::Scope scope(gemm_label(L, M), 2.0 * double(M) * double(L.N) * double(L.K));
  linear_forward_bf16_weights(out, nullptr, inp16, L, M, accumulate, padded);
}

void round_to_bf16_op(uint16_t* dst, const float* src, int64_t n) {
  prof::Scope cvt("activations fp32->bf16 (once per GEMM input)");
  round_to_bf16(dst, src, n);
}

bool linear_prepack(Linear& L, void (*consumed)(const void* p, size_t bytes)) {
  check_dtype(L);
  if (L.dtype != DType::BF16 || L.packed || !onednn_available() || !weight_packing_enabled()) return false;
  L.packed = pack_bf16_weight(static_cast<const uint16_t*>(L.w), L.N, L.K, consumed);
  return L.packed != nullptr;
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const Linear& L, int64_t M, GradOverwrite overwrite) {
  check_dtype(L);
  const int64_t N = L.N, K = L.K;
  if (M == 0 || N == 0) return;
  const bool bf16 = L.dtype == DType::BF16;

  if (dbias) {
    // Column sums, read row by row (a column walk strides N floats per load): each thread owns a block of
    // columns and adds the rows in order m = 0..M-1, so the result does not depend on the thread count.
    const int64_t cb = 256, nb = (N + cb - 1) / cb;
#pragma omp parallel for schedule(static) if (M * N > (1 << 16))
    for (int64_t b = 0; b < nb; b++) {
      const int64_t n0 = b * cb, n1 = std::min(N, n0 + cb);
      float s[256];
      for (int64_t n = n0; n < n1; n++) s[n - n0] = 0.f;
      for (int64_t m = 0; m < M; m++) {
        const float* row = dout + m * N;
        for (int64_t n = n0; n < n1; n++) s[n - n0] += row[n];
      }
      for (int64_t n = n0; n < n1; n++) dbias[n] = overwrite.dweight ? s[n - n0] : dbias[n] + s[n - n0];
    }
  }
  if (!dinp && !dweight) return;

  if (use_onednn()) {
    // Operands in the GEMM's precision: bf16 copies of dout/inp for BF16 weights, the fp32 buffers otherwise.
    // The copies live in per-thread scratch that keeps its pages across calls (fresh pages cost a kernel zeroing).
    // For dweight, dout is also copied transposed ([N, M]): oneDNN runs dout^T @ inp ~10% faster from a row-major
    // A than from a transposed view.
    static thread_local std::vector<uint16_t> dout_buf, dout_t_buf, inp_buf;
    const void* dO = dout;
    const void* dOt = dout;
    int64_t dot_rs = 1, dot_cs = N;  // dout^T[n, m] at dOt + n*dot_rs + m*dot_cs
    const void* X = inp;
    if (bf16) {
      if (dinp) {
        uint16_t* dout16 = grow(dout_buf, M * N);
        round_to_bf16(dout16, dout, M * N);
        dO = dout16;
      }
      if (dweight) {
        uint16_t* dout16t = grow(dout_t_buf, M * N);
        round_to_bf16_transposed(dout16t, dout, M, N);
        dOt = dout16t;
        dot_rs = M;
        dot_cs = 1;
        uint16_t* inp16 = grow(inp_buf, M * K);
        round_to_bf16(inp16, inp, M * K);
        X = inp16;
      }
    }
    if (dinp) {  // dinp[M,K] (+)= dout[M,N] @ W[N,K]
      MatmulArgs a;
      a.M = M; a.N = K; a.K = N; a.bf16 = bf16;
      a.A = dO; a.a_rs = N; a.a_cs = 1;
      a.B = L.w; a.b_rs = K; a.b_cs = 1;
      a.C = dinp; a.ldc = K; a.accumulate = !overwrite.dinp;
      onednn_matmul(a);
    }
    if (dweight) {  // dweight[N,K] (+)= dout^T[N,M] @ inp[M,K]
      MatmulArgs a;
      a.M = N; a.N = K; a.K = M; a.bf16 = bf16;
      a.A = dOt; a.a_rs = dot_rs; a.a_cs = dot_cs;
      a.B = X; a.b_rs = K; a.b_cs = 1;
      a.C = dweight; a.ldc = K; a.accumulate = !overwrite.dweight;
      onednn_matmul(a);
    }
    return;
  }

  // Built-in path: the GEMM wants K-contiguous operands, so transpose what is not.
  std::vector<float> dO(dout, dout + M * N);
  if (bf16) round_to_bf16_f32(dO.data(), dout, M * N);
  if (dinp) {
    std::vector<float> Wt(size_t(N * K));  // W^T [K, N], widened
    if (bf16) {
      std::vector<float> Wf(size_t(N * K));
      convert_to_f32(Wf.data(), L.w, DType::BF16, size_t(N * K));
      transpose(Wt.data(), Wf.data(), N, K);
    } else {
      transpose(Wt.data(), static_cast<const float*>(L.w), N, K);
    }
    gemm_nt_f32(M, K, N, dO.data(), N, Wt.data(), N, dinp, K, nullptr, !overwrite.dinp);
  }
  if (dweight) {
    std::vector<float> dOt(size_t(N * M)), Xt(size_t(K * M));
    transpose(dOt.data(), dO.data(), M, N);
    if (bf16) {
      std::vector<float> Xr(size_t(M * K));
      round_to_bf16_f32(Xr.data(), inp, M * K);
      transpose(Xt.data(), Xr.data(), M, K);
    } else {
      transpose(Xt.data(), inp, M, K);
    }
    gemm_nt_f32(N, K, M, dOt.data(), M, Xt.data(), M, dweight, K, nullptr, !overwrite.dweight);
  }
}

const char* linear_backend_name(DType dtype) {
  static std::string names[2];
  static std::once_flag once[2];
  const bool bf16 = dtype == DType::BF16;
  if (dtype != DType::F32 && !bf16) return "unsupported";
  std::call_once(once[bf16 ? 1 : 0], [&] {
    std::string n;
    if (onednn_available()) {
      n = std::string(bf16 ? "onednn-bf16(" : "onednn-f32(") + onednn_impl_name(bf16) + ")";
    } else {
      n = bf16 ? "builtin-bf16" : "builtin-f32";
    }
    if (bf16 && gemv_bf16_available()) n += "+gemv-" + std::string(gemv_bf16_isa());
    names[bf16 ? 1 : 0] = n;
  });
  return names[bf16 ? 1 : 0].c_str();
}

}  // namespace vr::cpu
