// CUDA GEMMs (kernels/gemm.h, cuda/gemm/gemm.h) vs the CPU Linear (ops/linear.h with BF16 weights: inputs
// rounded to bf16, fp32 accumulation) by the flash-attention rule against an fp64 reference: forward with bias,
// accumulate and strided rows; backward dinp, dweight (accumulated) and dbias. Every implementation present
// runs: the scalar kernel, the tensor-core kernel (sm_80+ GPU; on the CPU emulator with a C++ model of the
// mma.sync instruction) and cuBLASLt (GPU, when it was loaded). Also: argument errors, VREFLECT_GEMM, and the cuBLASLt loader's search order and failures.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <string>

#include "cuda/gemm/cublaslt_loader.h"
#include "cuda/gemm/gemm.h"
#include "cuda/kernels/cuda_kernels.h"
#include "cuda/kernels/gemm.h"
#include "cuda_tests/device_buffer.h"
#include "ops/activation.h"
#include "ops/linear.h"
#include "cuda_tests/scoped_env.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

using cuda::GemmArgs;

// One implementation under test: runs C (+)= ... for fp32 or bf16 C.
struct Impl {
  std::string name;
  std::function<void(float*, const bf16*, const bf16*, const GemmArgs&)> f32;
  std::function<void(bf16*, const bf16*, const bf16*, const GemmArgs&)> b16;
};

std::vector<Impl> impls() {
  std::vector<Impl> r;
  auto kernel = [&](cuda::GemmKernelPath p) {
    r.push_back({std::string("kernel-") + cuda::gemm_kernel_path_name(p),
                 [p](float* C, const bf16* A, const bf16* B, const GemmArgs& g) { cuda::gemm_kernel(C, A, B, g, nullptr, p); },
                 [p](bf16* C, const bf16* A, const bf16* B, const GemmArgs& g) { cuda::gemm_kernel(C, A, B, g, nullptr, p); }});
  };
  kernel(cuda::GemmKernelPath::Scalar);
#if defined(VR_CUDA_EMULATED)
  kernel(cuda::GemmKernelPath::TensorCore);  // with the emulator's model of mma.sync
#else
  if (cuda::gemm_kernel_resolve() == cuda::GemmKernelPath::TensorCore) kernel(cuda::GemmKernelPath::TensorCore);
  if (cuda::cublaslt_info().found) {
    r.push_back({"cublaslt",
                 [](float* C, const bf16* A, const bf16* B, const GemmArgs& g) { cuda::gemm(C, A, B, g, nullptr, cuda::GemmImpl::CublasLt); },
                 [](bf16* C, const bf16* A, const bf16* B, const GemmArgs& g) { cuda::gemm(C, A, B, g, nullptr, cuda::GemmImpl::CublasLt); }});
  } else {
    std::printf("note: cuBLASLt cases skipped: %s\n", cuda::cublaslt_info().error.c_str());
  }
#endif
  return r;
}

// dense [T, W] -> rows of stride `stride` with junk in the padding (which must survive untouched)
std::vector<float> widen(const std::vector<float>& dense, int64_t T, int64_t W, int64_t stride, float junk) {
  std::vector<float> r(size_t(T * stride), junk);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < W; c++) r[size_t(t * stride + c)] = dense[size_t(t * W + c)];
  return r;
}
std::vector<float> narrow(const std::vector<float>& wide, int64_t T, int64_t W, int64_t stride) {
  std::vector<float> r(size_t(T * W));
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < W; c++) r[size_t(t * W + c)] = wide[size_t(t * stride + c)];
  return r;
}
bool padding_intact(const std::vector<float>& wide, int64_t T, int64_t W, int64_t stride, float junk) {
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = W; c < stride; c++)
      if (wide[size_t(t * stride + c)] != junk) return false;
  return true;
}

std::vector<uint16_t> bits(const std::vector<float>& bf16_values) {
  std::vector<uint16_t> r(bf16_values.size());
  for (size_t i = 0; i < r.size(); i++) r[i] = f32_to_bf16(bf16_values[i]);
  return r;
}

struct Shape {
  int64_t M, N, K;
  int64_t pad_in = 0, pad_out = 0;  // extra elements per row of inp / out (forward only)
};

std::string shape_tag(const Shape& s) {
  return "M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
         (s.pad_in || s.pad_out ? " lda=" + std::to_string(s.K + s.pad_in) + " ldc=" + std::to_string(s.N + s.pad_out)
                                : "");
}

// out[M,N] = (out0 if accumulate) + inp @ W^T + bias, C of storage S.
template <class S>
void forward_case(const Impl& impl, const Shape& s, bool with_bias, bool accumulate, uint64_t seed) {
  Rng rng(seed);
  const int64_t M = s.M, N = s.N, K = s.K, lda = K + s.pad_in, ldc = N + s.pad_out;
  const auto inp = round_bf16(rng.vec(size_t(M * K), -2, 2)), w = round_bf16(rng.vec(size_t(N * K)));
  const auto bias = rng.vec(size_t(N)), out0 = stored<S>(rng.vec(size_t(M * N), -3, 3));
  const std::string tag = "cuda gemm " + impl.name + " forward " + storage_name<S>() + " " + shape_tag(s) +
                          (with_bias ? " +bias" : "") + (accumulate ? " +acc" : "");

  std::vector<double> ref(size_t(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double acc = (accumulate ? double(out0[size_t(m * N + n)]) : 0.0) + (with_bias ? double(bias[size_t(n)]) : 0.0);
      for (int64_t k = 0; k < K; k++) acc += double(inp[size_t(m * K + k)]) * double(w[size_t(n * K + k)]);
      ref[size_t(m * N + n)] = acc;
    }
  const std::vector<uint16_t> wbits = bits(w);
  Linear L;
  L.dtype = DType::BF16, L.N = N, L.K = K, L.w = wbits.data(), L.b = with_bias ? bias.data() : nullptr;
  std::vector<float> cpu = out0;
  linear_forward(cpu.data(), inp.data(), L, M, accumulate);
  cpu = stored<S>(cpu);

  const float junk = 7.5f;
  DeviceBuffer<bf16> d_in(to_bf16(widen(inp, M, K, lda, junk))), d_w(to_bf16(w));
  DeviceBuffer<float> d_bias(bias);
  DeviceBuffer<S> d_out(to_storage<S>(widen(out0, M, N, ldc, junk)));
  GemmArgs g = cuda::linear_forward_args(M, N, K, with_bias ? d_bias.get() : nullptr, accumulate);
  g.lda = lda, g.ldc = ldc;
  if constexpr (sizeof(S) == 4)
    impl.f32(d_out.get(), d_in.get(), d_w.get(), g);
  else
    impl.b16(d_out.get(), d_in.get(), d_w.get(), g);
  const auto wide = to_float(d_out.download());
  const auto got = narrow(wide, M, N, ldc);
  check_rule(tag, got.data(), cpu.data(), ref.data(), ref.size(), 1e-5);
  if (s.pad_out) check_true(tag + " leaves the padding of out rows alone", padding_intact(wide, M, N, ldc, junk));
}

// dinp += dout @ W, dweight += dout^T @ inp (fp32 gradients, bf16 dout / inp / W), dbias += colsum(dout).
void backward_case(const Impl& impl, const Shape& s, uint64_t seed, bool with_dbias) {
  Rng rng(seed);
  const int64_t M = s.M, N = s.N, K = s.K;
  const auto dout = round_bf16(rng.vec(size_t(M * N))), inp = round_bf16(rng.vec(size_t(M * K), -2, 2));
  const auto w = round_bf16(rng.vec(size_t(N * K)));
  const auto dinp0 = rng.vec(size_t(M * K)), dw0 = rng.vec(size_t(N * K)), db0 = rng.vec(size_t(N));
  const std::string tag = "cuda gemm " + impl.name + " backward " + shape_tag(s);

  std::vector<double> dinp64 = to_double(dinp0), dw64 = to_double(dw0), db64 = to_double(db0);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      const double d = dout[size_t(m * N + n)];
      db64[size_t(n)] += d;
      for (int64_t k = 0; k < K; k++) {
        dinp64[size_t(m * K + k)] += d * double(w[size_t(n * K + k)]);
        dw64[size_t(n * K + k)] += d * double(inp[size_t(m * K + k)]);
      }
    }
  const std::vector<uint16_t> wbits = bits(w);
  Linear L;
  L.dtype = DType::BF16, L.N = N, L.K = K, L.w = wbits.data();
  std::vector<float> dinp_cpu = dinp0, dw_cpu = dw0, db_cpu = db0;
  linear_backward(dinp_cpu.data(), dw_cpu.data(), db_cpu.data(), dout.data(), inp.data(), L, M);

  DeviceBuffer<bf16> d_dout(to_bf16(dout)), d_in(to_bf16(inp)), d_w(to_bf16(w));
  DeviceBuffer<float> d_dinp(dinp0), d_dw(dw0), d_db(db0);
  impl.f32(d_dinp.get(), d_dout.get(), d_w.get(), cuda::linear_backward_input_args(M, N, K));
  impl.f32(d_dw.get(), d_dout.get(), d_in.get(), cuda::linear_backward_weight_args(M, N, K));
  const auto dinp = d_dinp.download(), dw = d_dw.download();
  check_rule(tag + " dinp", dinp.data(), dinp_cpu.data(), dinp64.data(), dinp.size(), 1e-5);
  check_rule(tag + " dweight", dw.data(), dw_cpu.data(), dw64.data(), dw.size(), 1e-5);
  if (with_dbias) {
    cuda::bias_grad(d_db.get(), d_dout.get(), M, N);
    const auto db = d_db.download();
    check_rule("cuda bias_grad bf16 " + shape_tag(s), db.data(), db_cpu.data(), db64.data(), db.size(), 1e-5);
  }
}

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {
      {37, 45, 70},          // smaller than one tile, odd sizes
      {136, 264, 72},        // several tiles, every stride a multiple of 8 (the tensor-core vector loads)
      {70, 75, 40, 3, 5},    // rows of a wider buffer (odd strides: element loads)
  };
  return s;
}

template <class F>
void check_error(const std::string& what, const std::string& expected, F fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    check_true(what + " -> \"" + msg + "\"", msg.find(expected) != std::string::npos &&
                                                 msg.find('\n') == std::string::npos);
    return;
  }
  check_true(what + " throws", false);
}

// VREFLECT_GEMM (or another variable) for a scope; the GEMMs, which keep VREFLECT_GEMM once read, read it again.
struct ScopedGemmEnv : ScopedEnv {
  ScopedGemmEnv(const char* n, const char* v) : ScopedEnv(n, v, cuda::env_switches_changed) {}
};

cuda::EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* n) -> const char* {
    auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

// The dispatcher's span limit lowered for a scope (tests of the row split).
struct SpanLimit {
  explicit SpanLimit(int64_t n) { cuda::gemm_set_max_span_for_tests(n); }
  ~SpanLimit() { cuda::gemm_set_max_span_for_tests(0); }
};

// A fixed pseudo-random value in [-1, 1) per index, exactly representable in bf16 (k / 64): data of any size
// without a host-side random vector, and its reference recomputed element by element.
float hashed_value(uint64_t i) {
  uint64_t z = i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(int64_t(z >> 57) - 64) / 64.0f;
}

// logits[M, V] = hidden[M, D] @ lm_head[V, D]^T through the dispatcher, which must cut it into `pieces` row pieces
// of `cut` rows; rows 0, cut - 1, cut and M - 1 (every col_step-th column and the last) against fp64.
void logits_split_case(int64_t M, int64_t V, int64_t D, int64_t cut, int64_t pieces, int64_t col_step) {
  auto fill = [](int64_t n, uint64_t salt) {
    std::vector<bf16> h(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) h[size_t(i)].bits = f32_to_bf16(hashed_value(uint64_t(i) ^ salt));
    return h;
  };
  DeviceBuffer<bf16> a(fill(M * D, 1)), w(fill(V * D, 2));
  DeviceBuffer<float> c(static_cast<size_t>(M * V));
  const std::string tag = "logits " + std::to_string(M) + " x " + std::to_string(V) + " x " + std::to_string(D);
  const int64_t before = cuda::gemm_split_pieces();
  const cuda::GemmImpl impl = cuda::gemm(c.get(), a.get(), w.get(), cuda::linear_forward_args(M, V, D));
  cuda_ok(cudaDeviceSynchronize(), "the logits GEMM");
  check_true(tag + " ran as " + std::to_string(pieces) + " row pieces (last on " + cuda::gemm_impl_name(impl) + ")",
             cuda::gemm_split_pieces() - before == pieces);
  std::vector<int64_t> cols;
  for (int64_t n = 0; n < V; n += col_step) cols.push_back(n);
  cols.push_back(V - 1);
  double worst = 0;
  bool ok = true;
  for (int64_t r : {int64_t(0), cut - 1, cut, M - 1}) {
    std::vector<float> row(static_cast<size_t>(V));
    cuda_ok(cudaMemcpy(row.data(), c.get() + r * V, size_t(V) * sizeof(float), cudaMemcpyDeviceToHost), "download");
    for (int64_t n : cols) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < D; k++) {
        const double x = hashed_value(uint64_t(r * D + k) ^ 1), y = hashed_value(uint64_t(n * D + k) ^ 2);
        ref += x * y;
        mag += std::fabs(x * y);
      }
      const double err = std::fabs(double(row[size_t(n)]) - ref);
      worst = std::max(worst, err / (mag + 1e-30));
      ok &= err <= 1e-4 * mag + 1e-6;
    }
  }
  check_true(tag + " rows 0, " + std::to_string(cut - 1) + " | " + std::to_string(cut) + ", " + std::to_string(M - 1) +
                 " match fp64 (worst error / sum|a b| " + std::to_string(worst) + ")",
             ok);
}

}  // namespace

VR_TEST(cuda_gemm_forward) {
  uint64_t seed = 100;
  for (const Impl& impl : impls())
    for (const Shape& s : shapes()) {
      forward_case<float>(impl, s, true, false, seed++);
      forward_case<float>(impl, s, false, true, seed++);
      forward_case<bf16>(impl, s, true, true, seed++);
    }
}

VR_TEST(cuda_gemm_backward) {
  uint64_t seed = 200;
  const std::vector<Impl> list = impls();
  for (const Impl& impl : list)
    for (const Shape& s : shapes())
      if (!s.pad_in && !s.pad_out)  // bias_grad is one kernel: checked alongside the first implementation
        backward_case(impl, s, seed++, &impl == &list.front());
}

VR_TEST(cuda_gemm_dispatch) {
  // The dispatcher with our kernel forced gives the kernel's result; it says which implementation ran.
  const Shape s{33, 20, 24};
  Rng rng(300);
  const auto a = round_bf16(rng.vec(size_t(s.M * s.K))), b = round_bf16(rng.vec(size_t(s.N * s.K)));
  DeviceBuffer<bf16> d_a(to_bf16(a)), d_b(to_bf16(b));
  DeviceBuffer<float> d_c1(size_t(s.M * s.N)), d_c2(size_t(s.M * s.N));
  const GemmArgs g = cuda::linear_forward_args(s.M, s.N, s.K);
  cuda::gemm_kernel(d_c1.get(), d_a.get(), d_b.get(), g);
  {
    ScopedGemmEnv env("VREFLECT_GEMM", "kernel");
    check_true("VREFLECT_GEMM=kernel runs the vreflect kernel",
               cuda::gemm(d_c2.get(), d_a.get(), d_b.get(), g) == cuda::GemmImpl::Kernel);
    setenv("VREFLECT_GEMM", "fast", 1);  // unseen: the GEMMs read the variable once, not per call
    check_true("VREFLECT_GEMM is read once, not per GEMM",
               cuda::gemm(d_c2.get(), d_a.get(), d_b.get(), g) == cuda::GemmImpl::Kernel);
  }
  const auto c1 = d_c1.download(), c2 = d_c2.download();
  check_true("dispatch to the kernel equals gemm_kernel", max_abs_diff(c1.data(), c2.data(), c1.size()) == 0);
  {
    ScopedGemmEnv env("VREFLECT_GEMM", "fast");
    check_error("VREFLECT_GEMM=fast", "VREFLECT_GEMM=fast is not one of auto, cublaslt, kernel",
                [&] { cuda::gemm(d_c2.get(), d_a.get(), d_b.get(), g); });
  }
#if defined(VR_CUDA_EMULATED)
  {
    ScopedGemmEnv env("VREFLECT_GEMM", "cublaslt");
    check_error("VREFLECT_GEMM=cublaslt on the emulator", "cuBLASLt was requested but cannot run",
                [&] { cuda::gemm(d_c2.get(), d_a.get(), d_b.get(), g); });
  }
  check_true("auto on the emulator runs the vreflect kernel",
             cuda::gemm(d_c2.get(), d_a.get(), d_b.get(), g, nullptr, cuda::GemmImpl::Auto) == cuda::GemmImpl::Kernel);
#else
  std::printf("note: cuBLASLt %s\n", cuda::cublaslt_info_json(cuda::cublaslt_info()).c_str());
#endif
  {  // k = 0: nothing to multiply, C = bias + C
    DeviceBuffer<float> d_bias(std::vector<float>{1, 2, 3}), d_c(std::vector<float>(6, 10.f));
    cuda::gemm(d_c.get(), d_a.get(), d_b.get(), cuda::linear_forward_args(2, 3, 0, d_bias.get(), true));
    check_true("k = 0 gives bias + C", d_c.download() == std::vector<float>{11, 12, 13, 11, 12, 13});
  }
  GemmArgs bad = g;
  bad.m = -1;
  check_error("negative m", "gemm: negative size m=-1", [&] { cuda::gemm_kernel(d_c2.get(), d_a.get(), d_b.get(), bad); });
  bad = g;
  bad.lda = s.K - 1;
  check_error("lda < k", "row stride is smaller than its row",
              [&] { cuda::gemm_kernel(d_c2.get(), d_a.get(), d_b.get(), bad); });
  check_error("null A", "null matrix pointer",
              [&] { cuda::gemm_kernel(d_c2.get(), static_cast<const bf16*>(nullptr), d_b.get(), g); });
}

// Scale audit: GEMMs whose operands span more than kGemmMaxSpan elements (cuBLASLt's int32 limit) are cut into row
// pieces. The figures at the 7B's sizes, then the cut itself on the emulator with the limit lowered to a few
// thousand elements: the dispatcher's pieces (C and A offset by rows, or by columns of A with trans_a) must give
// the reference results by the same rule as the whole GEMM.
VR_TEST(cuda_gemm_split_rows) {
  const int64_t V = 152064, D = 3584;
  const GemmArgs logits = cuda::checked_gemm_args(cuda::linear_forward_args(17000, V, D));
  check_true("7B all-positions logits (17000 x 152064) exceed the span: 14122 rows per cuBLASLt call",
             cuda::gemm_rows_per_call(logits) == 14122 &&
                 cuda::gemm_operand_span(14122, V, V) <= cuda::kGemmMaxSpan &&
                 cuda::gemm_operand_span(14123, V, V) > cuda::kGemmMaxSpan);
  check_true("7B lm_head forward for a 4096-row chunk fits one call",
             cuda::gemm_rows_per_call(cuda::checked_gemm_args(cuda::linear_forward_args(4096, V, D))) == 4096);
  check_true("7B lm_head dweight over 200 rows of logits fits one call",
             cuda::gemm_rows_per_call(cuda::checked_gemm_args(cuda::linear_backward_weight_args(200, V, D))) == V);
  GemmArgs huge_b = cuda::checked_gemm_args(cuda::linear_forward_args(10, 600000, D));  // W spans 2.15e9
  check_true("a B operand over the span cannot be cut by rows (0: our kernel)", cuda::gemm_rows_per_call(huge_b) == 0);

  const Impl split{"dispatch-split",
                   [](float* C, const bf16* A, const bf16* B, const GemmArgs& g) { cuda::gemm(C, A, B, g); },
                   [](bf16* C, const bf16* A, const bf16* B, const GemmArgs& g) { cuda::gemm(C, A, B, g); }};
  int64_t before = cuda::gemm_split_pieces();
  {
    // forward 70 x 75 x 40 with padded rows (lda 43, ldc 80): C spans 5595, A 3007, W 3000 -> 38 + 32 rows.
    SpanLimit lim(3100);
    forward_case<float>(split, {70, 75, 40, 3, 5}, true, true, 400);
    forward_case<bf16>(split, {70, 75, 40, 3, 5}, true, false, 401);
  }
  check_true("the padded forward ran as 2 row pieces per GEMM", cuda::gemm_split_pieces() - before == 4);
  before = cuda::gemm_split_pieces();
  {
    // backward 100 x 24 x 16: dinp (A = dout [100, 24], C [100, 16], W spans 384) in 16-row pieces (the last 4
    // rows); dweight (A = dout read transposed: its span does not shrink with C's rows) whole, by our kernel.
    SpanLimit lim(400);
    backward_case(split, {100, 24, 16}, 402, false);
  }
  check_true("dinp ran as 7 row pieces", cuda::gemm_split_pieces() - before == 7);
  before = cuda::gemm_split_pieces();
  {
    // backward 4 x 100 x 30: dweight (C = dW [100, 30]; A = dout [4, 100] read transposed, so a piece starts at
    // column r0 of A) in 13-row pieces; dinp (W spans 3000) whole, by our kernel.
    SpanLimit lim(400);
    backward_case(split, {4, 100, 30}, 403, false);
  }
  check_true("dweight ran as 8 row pieces (pieces of op(A) = columns of A)", cuda::gemm_split_pieces() - before == 8);
  {
    SpanLimit lim(100);
    DeviceBuffer<bf16> a(size_t(16 * 100)), b(size_t(16 * 24));
    DeviceBuffer<float> c(size_t(100 * 24));
    check_true("an operand over the limit even one row at a time runs our kernel",
               cuda::gemm(c.get(), a.get(), b.get(), cuda::linear_backward_weight_args(16, 100, 24)) ==
                   cuda::GemmImpl::Kernel);
    check_error("cuBLASLt forced on such a GEMM", "spans more than",
                [&] { cuda::gemm(c.get(), a.get(), b.get(), cuda::linear_backward_weight_args(16, 100, 24), nullptr,
                                 cuda::GemmImpl::CublasLt); });
  }
  {
    // The check the GPU runs at the 7B's size (below), here at 100 x 48 x 16 cut every 16 rows (W spans 768).
    SpanLimit lim(800);
    logits_split_case(100, 48, 16, 16, 7, 1);
  }
}

#if !defined(VR_CUDA_EMULATED)
// On a GPU only (11.6 GB of device memory; on the emulator as much host memory and hours): the 7B's all-positions
// logits GEMM at its real size, 17,000 x 152,064 x 3,584, through the dispatcher: two row pieces of at most 14,122
// rows (cuBLASLt when it is loaded, else our kernel).
VR_TEST(cuda_gemm_split_rows_7b_logits) {
  size_t free_b = 0, total_b = 0;
  cuda_ok(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  if (free_b < (size_t(12) << 30)) {
    std::printf("note: cuda_gemm_split_rows_7b_logits skipped: %zu MiB free, it needs 12 GiB\n", free_b >> 20);
    return;
  }
  logits_split_case(17000, 152064, 3584, 14122, 2, 101);
}
#endif

// The skinny kernel (kernels/gemv.cu) by the same rule, on the shapes it takes: 1..8 rows, K a multiple of 8 (one
// and several 32-lane sweeps of 16-byte chunks, a partial last sweep), N odd (a warp with one W row), padded rows.
// Then the dispatcher: Auto takes it for <= 8 rows, declines cleanly to the GEMM (odd K, unaligned rows, 9 rows),
// VREFLECT_GEMV=off and a forced implementation never run it, a forced gemv on a case it cannot take says so.
VR_TEST(cuda_gemv_forward) {
  const Impl gemv{"gemv",
                  [](float* C, const bf16* A, const bf16* B, const GemmArgs& g) {
                    check_true("gemv takes the case", cuda::gemv_linear(C, A, B, g));
                  },
                  [](bf16* C, const bf16* A, const bf16* B, const GemmArgs& g) {
                    check_true("gemv takes the case", cuda::gemv_linear(C, A, B, g));
                  }};
  const std::vector<Shape> cases = {{1, 37, 64}, {2, 9, 8}, {3, 70, 264}, {8, 33, 776}, {5, 16, 520, 8, 3},
                                    {7, 1, 256}};
  uint64_t seed = 400;
  for (const Shape& s : cases) {
    forward_case<float>(gemv, s, true, false, seed++);
    forward_case<float>(gemv, s, false, true, seed++);
    forward_case<bf16>(gemv, s, true, true, seed++);
  }

  Rng rng(450);
  const int64_t M = 4, N = 24, K = 48;
  const auto a = round_bf16(rng.vec(size_t(9 * K + 8))), w = round_bf16(rng.vec(size_t(N * K)));
  DeviceBuffer<bf16> d_a(to_bf16(a)), d_w(to_bf16(w));
  DeviceBuffer<float> d_c(size_t(9 * N));
  const GemmArgs g = cuda::linear_forward_args(M, N, K);
  check_true("auto runs gemv for 4 rows", cuda::gemm(d_c.get(), d_a.get(), d_w.get(), g) == cuda::GemmImpl::Gemv);
  check_true("auto runs a GEMM for 9 rows", cuda::gemm(d_c.get(), d_a.get(), d_w.get(), cuda::linear_forward_args(9, N, K)) !=
                                                  cuda::GemmImpl::Gemv);
  GemmArgs odd_k = cuda::linear_forward_args(M, N, K - 3);
  odd_k.lda = odd_k.ldb = K;
  check_true("gemv declines k % 8 != 0", !cuda::gemv_linear(d_c.get(), d_a.get(), d_w.get(), odd_k));
  check_true("auto falls back to a GEMM for k % 8 != 0",
             cuda::gemm(d_c.get(), d_a.get(), d_w.get(), odd_k) != cuda::GemmImpl::Gemv);
  check_true("gemv declines an operand that is not 16-byte aligned",
             !cuda::gemv_linear(d_c.get(), d_a.get() + 1, d_w.get(), g));
  check_true("gemv declines a backward-input GEMM (W not transposed)",
             !cuda::gemv_linear(d_c.get(), d_a.get(), d_w.get(), cuda::linear_backward_input_args(M, K, N)));
  check_error("forced gemv on a case it cannot take", "the gemv kernel was requested but does not take this case",
              [&] { cuda::gemm(d_c.get(), d_a.get(), d_w.get(), odd_k, nullptr, cuda::GemmImpl::Gemv); });
  check_true("a forced kernel is not turned into gemv",
             cuda::gemm(d_c.get(), d_a.get(), d_w.get(), g, nullptr, cuda::GemmImpl::Kernel) == cuda::GemmImpl::Kernel);
  {
    ScopedGemmEnv env("VREFLECT_GEMV", "off");
    check_true("VREFLECT_GEMV=off runs a GEMM", cuda::gemm(d_c.get(), d_a.get(), d_w.get(), g) != cuda::GemmImpl::Gemv);
  }
  {
    ScopedGemmEnv env("VREFLECT_GEMV", "fast");
    check_error("VREFLECT_GEMV=fast", "VREFLECT_GEMV=fast is not one of auto, off",
                [&] { cuda::gemm(d_c.get(), d_a.get(), d_w.get(), g); });
  }
  check_error("gemv null output", "gemv: null matrix pointer",
              [&] { cuda::gemv_linear(static_cast<float*>(nullptr), d_a.get(), d_w.get(), g); });
}

// The decode MLP's fused gate / up / SwiGLU pass (gemv_swiglu): bit for bit the unfused gemv path (gemv into bf16
// gate and up, then swiglu_forward), and by the rule vs fp64 with the CPU's bf16 path (Linear into fp32, both
// rounded to bf16, swiglu_forward_bf16) as the naive reference; shapes with one and several chunk sweeps, F odd (a
// block with fewer than 4 warps' columns), 1..8 rows. Then the dispatch: gemm_swiglu_forward fuses for <= 8 rows,
// runs the three steps for 9 rows or VREFLECT_GEMV=off (same rule), and needs the up scratch there.
VR_TEST(cuda_gemv_swiglu) {
  struct Case { int64_t M, F, K; };
  const std::vector<Case> cases = {{1, 37, 64}, {2, 9, 8}, {3, 70, 264}, {8, 33, 776}, {5, 1, 520}, {9, 21, 72}};
  uint64_t seed = 470;
  for (const Case& c : cases) {
    Rng rng(seed++);
    const int64_t M = c.M, F = c.F, K = c.K;
    const auto x = round_bf16(rng.vec(size_t(M * K), -2, 2)), wg = round_bf16(rng.vec(size_t(F * K))),
               wu = round_bf16(rng.vec(size_t(F * K)));
    const std::string tag = "cuda gemv_swiglu M=" + std::to_string(M) + " F=" + std::to_string(F) + " K=" +
                            std::to_string(K);
    std::vector<double> ref(size_t(M * F));
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < F; n++) {
        double g = 0, u = 0;
        for (int64_t k = 0; k < K; k++) {
          g += double(x[size_t(m * K + k)]) * double(wg[size_t(n * K + k)]);
          u += double(x[size_t(m * K + k)]) * double(wu[size_t(n * K + k)]);
        }
        ref[size_t(m * F + n)] = g / (1.0 + std::exp(-g)) * u;
      }
    const std::vector<uint16_t> gbits = bits(wg), ubits = bits(wu);
    Linear G, U;
    G.dtype = U.dtype = DType::BF16, G.N = U.N = F, G.K = U.K = K, G.w = gbits.data(), U.w = ubits.data();
    std::vector<float> g_cpu(size_t(M * F)), u_cpu(size_t(M * F));
    linear_forward(g_cpu.data(), x.data(), G, M, false);
    linear_forward(u_cpu.data(), x.data(), U, M, false);
    g_cpu = round_bf16(g_cpu), u_cpu = round_bf16(u_cpu);
    std::vector<uint16_t> naive16(size_t(M * F));
    swiglu_forward_bf16(naive16.data(), g_cpu.data(), u_cpu.data(), M * F);
    std::vector<float> naive(naive16.size());
    for (size_t i = 0; i < naive.size(); i++) naive[i] = bf16_to_f32(naive16[i]);

    DeviceBuffer<bf16> d_x(to_bf16(x)), d_g(to_bf16(wg)), d_u(to_bf16(wu)), out(size_t(M * F)), up(size_t(M * F));
    const cuda::GemmImpl used = cuda::gemm_swiglu_forward(out.get(), up.get(), d_x.get(), d_g.get(), d_u.get(), M, F, K);
    check_true(tag + " runs " + (M <= cuda::kGemvMaxRows ? "fused" : "as three steps"),
               (used == cuda::GemmImpl::Gemv) == (M <= cuda::kGemvMaxRows));
    const auto got = from_bf16(out.download());
    check_rule(tag, got.data(), naive.data(), ref.data(), ref.size(), 1e-5);
    if (M > cuda::kGemvMaxRows) continue;
    // The unfused gemv path on the same inputs: the same bits.
    DeviceBuffer<bf16> g16(size_t(M * F)), u16(size_t(M * F)), unfused(size_t(M * F));
    check_true(tag + " gemv takes gate", cuda::gemv_linear(g16.get(), d_x.get(), d_g.get(), cuda::linear_forward_args(M, F, K)));
    check_true(tag + " gemv takes up", cuda::gemv_linear(u16.get(), d_x.get(), d_u.get(), cuda::linear_forward_args(M, F, K)));
    cuda::swiglu_forward(unfused.get(), g16.get(), u16.get(), M * F);
    const auto a = out.download(), b = unfused.download();
    bool same = true;
    for (size_t i = 0; i < a.size(); i++) same = same && a[i].bits == b[i].bits;
    check_true(tag + " = gemv gate, gemv up, swiglu_forward bit for bit", same);
    {
      ScopedGemmEnv env("VREFLECT_GEMV", "off");
      DeviceBuffer<bf16> off(size_t(M * F));
      check_true(tag + " VREFLECT_GEMV=off runs three steps",
                 cuda::gemm_swiglu_forward(off.get(), up.get(), d_x.get(), d_g.get(), d_u.get(), M, F, K) !=
                     cuda::GemmImpl::Gemv);
      const auto got_off = from_bf16(off.download());
      check_rule(tag + " (VREFLECT_GEMV=off)", got_off.data(), naive.data(), ref.data(), ref.size(), 1e-5);
    }
  }
  DeviceBuffer<bf16> x(size_t(16)), w(size_t(16)), o(size_t(16));
  check_true("gemv_swiglu declines K % 8 != 0", !cuda::gemv_swiglu(o.get(), x.get(), w.get(), w.get(), 1, 1, 12));
  check_true("gemv_swiglu declines an unaligned weight", !cuda::gemv_swiglu(o.get(), x.get(), w.get() + 1, w.get(), 1, 1, 8));
  check_error("gemv_swiglu null output", "gemv_swiglu: null matrix pointer",
              [&] { cuda::gemv_swiglu(nullptr, x.get(), w.get(), w.get(), 1, 1, 8); });
  check_error("the unfused path without the up scratch", "needs the up scratch",
              [&] { cuda::gemm_swiglu_forward(o.get(), nullptr, x.get(), w.get(), w.get(), 1, 1, 12); });
}

VR_TEST(cuda_gemm_cublaslt_loader) {
  using cuda::cublaslt_candidates;
  // Search order: CUDA_HOME before the loader path before the wheels, newest soname first in each place.
  const auto c = cublaslt_candidates(fake_env({{"CUDA_HOME", "/opt/cuda"}}), {"/sp"});
  check_true("candidates start with $CUDA_HOME/lib64/libcublasLt.so.13",
             !c.empty() && c.front() == "/opt/cuda/lib64/libcublasLt.so.13" && c[1] == "/opt/cuda/lib64/libcublasLt.so.12");
  size_t bare = c.size(), wheel = c.size();
  for (size_t i = 0; i < c.size(); i++) {
    if (c[i] == "libcublasLt.so.13" && bare == c.size()) bare = i;
    if (c[i] == "/sp/nvidia/cublas/lib/libcublasLt.so.12") wheel = i;
  }
  check_true("the loader path (bare soname) comes after $CUDA_HOME and before the Python wheels",
             bare < c.size() && wheel < c.size() && bare > 1 && wheel > bare && c.back() == "/sp/nvidia/cublas/lib/libcublasLt.so");
  const auto only = cublaslt_candidates(fake_env({{"VREFLECT_CUBLASLT", "/x/libcublasLt.so.12"}, {"CUDA_HOME", "/opt/cuda"}}), {"/sp"});
  check_true("VREFLECT_CUBLASLT=<file> is the only candidate", only.size() == 1 && only[0] == "/x/libcublasLt.so.12");
  check_true("VREFLECT_CUBLASLT=off gives no candidate",
             cublaslt_candidates(fake_env({{"VREFLECT_CUBLASLT", "off"}}), {"/sp"}).empty());

  const auto off = cuda::cublaslt_probe(fake_env({{"VREFLECT_CUBLASLT", "off"}}), false);
  check_true("VREFLECT_CUBLASLT=off: not found, says it was disabled: " + off.error,
             !off.found && off.error.find("disabled by VREFLECT_CUBLASLT=off") != std::string::npos);
  const auto missing = cuda::cublaslt_probe(fake_env({{"VREFLECT_CUBLASLT", "/nonexistent/libcublasLt.so.13"}}), false);
  check_true("a missing explicit library: not found, names the path and the fallback: " + missing.error,
             !missing.found && missing.error.find("/nonexistent/libcublasLt.so.13") != std::string::npos &&
                 missing.error.find("vreflect kernel") != std::string::npos);

  // A directory holding a file that is not a library: dlopen's reason is reported.
  const std::string dir = "/tmp/vreflect_cublaslt_test_" + std::to_string(getpid());
  std::system(("mkdir -p " + dir).c_str());
  { std::ofstream(dir + "/libcublasLt.so.12") << "not an ELF file\n"; }
  const auto junk = cuda::cublaslt_probe(fake_env({{"VREFLECT_CUBLASLT", dir}}), false);
  check_true("a non-library file: not found, dlopen's error reported: " + junk.error,
             !junk.found && junk.error.find("last error: " + dir + "/libcublasLt.so.12: ") != std::string::npos &&
                 junk.error.find("no such file") == std::string::npos && junk.tried.size() == 1);
  std::remove((dir + "/libcublasLt.so.12").c_str());
  std::system(("rmdir " + dir).c_str());

  // A real shared library without the entry points (libm): the first missing symbol is named.
  Dl_info dl;
  double (*cos_fn)(double) = std::cos;
  if (dladdr(reinterpret_cast<void*>(cos_fn), &dl) && dl.dli_fname && std::string(dl.dli_fname).find("libm") != std::string::npos) {
    const auto nosym = cuda::cublaslt_probe(fake_env({{"VREFLECT_CUBLASLT", dl.dli_fname}}), false);
    check_true("a library without cuBLASLt's entry points: " + nosym.error,
               !nosym.found && nosym.error.find("has no cublasLtCreate") != std::string::npos);
  }

  cuda::CublasLtInfo info;
  info.error = "say \"no\"\\";
  check_true("info JSON escapes strings: " + cuda::cublaslt_info_json(info),
             cuda::cublaslt_info_json(info) == R"({"found":false,"path":"","version":"","error":"say \"no\"\\"})");
}

}  // namespace vr::test
