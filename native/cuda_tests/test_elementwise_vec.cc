// The 16-byte paths of the memory-bound kernels (cuda/kernels/elementwise_vec.cuh) against their scalar kernels on
// the same inputs (VREFLECT_ELEMENTWISE=scalar vs =vector):
// - bit for bit, every output: the elementwise kernels (swiglu, gelu, rope, convert, adamw, kv_append, scatter_rows,
//   embedding gather, sum_groups_add) with sizes that are not multiples of 8 (the scalar tail), buffers offset by one
//   element (16-byte alignment lost: the scalar fallback must be taken), strides that forbid the vector path; and
//   the row reductions (rmsnorm, layernorm, cross-entropy), whose 16-byte paths fold in the scalar order. Only
//   rmsnorm's dweight, summed across blocks by atomicAdd in either path, is compared within a tolerance.
// The CPU-reference tests of these kernels (test_norm.cc, test_loss_optim.cc, ...) run the 16-byte paths by default
// on their multiple-of-8 shapes.
// Each case also checks which path ran (cuda::elementwise_vector_calls()).
#include <cmath>
#include <cstring>
#include <string>

#include "cuda/model/gpu_train_kernels.h"
#include "cuda/model/model_kernels.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/scoped_env.h"
#include "tests/harness.h"
#if defined(VR_CUDA_EMULATED)
#include "cuda_emu/emu_banks.h"
#endif

namespace vr::test {
namespace {

using Bytes = std::vector<uint8_t>;

template <class S>
void append_bytes(Bytes& out, const std::vector<S>& v) {
  const size_t at = out.size();
  out.resize(at + v.size() * sizeof(S));
  if (!v.empty()) std::memcpy(out.data() + at, v.data(), v.size() * sizeof(S));
}

// A device copy of `host` starting `off` elements into its allocation (off = 1 breaks the 16-byte alignment).
template <class S>
class Shifted {
 public:
  Shifted(const std::vector<S>& host, size_t off) : d_(host.size() + off), off_(off) {
    std::vector<S> padded(host.size() + off);
    std::copy(host.begin(), host.end(), padded.begin() + long(off));
    d_.upload(padded);
  }
  S* get() const { return d_.get() + off_; }
  std::vector<S> download() const {
    const std::vector<S> v = d_.download();
    return std::vector<S>(v.begin() + long(off_), v.end());
  }

 private:
  DeviceBuffer<S> d_;
  size_t off_;
};

// fn() runs the kernel(s) on fresh buffers and returns the outputs' bytes; it runs once per path.
template <class F>
void same_bits(const std::string& what, bool expect_vector, F fn) {
  Bytes scalar, vector;
  int64_t before = 0, mid = 0, after = 0;
  {
    ScopedEnv e("VREFLECT_ELEMENTWISE", "scalar", cuda::env_switches_changed);
    before = cuda::elementwise_vector_calls();
    scalar = fn();
    mid = cuda::elementwise_vector_calls();
  }
  {
    ScopedEnv e("VREFLECT_ELEMENTWISE", "vector", cuda::env_switches_changed);
    vector = fn();
    after = cuda::elementwise_vector_calls();
  }
  check_true(what + ": VREFLECT_ELEMENTWISE=scalar takes no 16-byte path", mid == before);
  check_true(what + (expect_vector ? ": took the 16-byte path" : ": fell back to the scalar kernel"),
             (after > mid) == expect_vector);
  size_t diff = 0;
  for (size_t i = 0; i < std::min(scalar.size(), vector.size()); i++) diff += scalar[i] != vector[i];
  check_true(what + ": bit-identical to the scalar kernel (" + std::to_string(diff) + " bytes differ)",
             scalar.size() == vector.size() && diff == 0);
}

std::string name(const char* op, const char* storage, int64_t n, size_t off) {
  return std::string("vec16 ") + op + " " + storage + " n=" + std::to_string(n) + " off=" + std::to_string(off);
}

template <class S>
void swiglu_gelu_case(int64_t n, size_t off, uint64_t seed) {
  Rng rng(seed);
  const auto gate = to_storage<S>(rng.vec(size_t(n), -6, 6)), up = to_storage<S>(rng.vec(size_t(n), -2, 2));
  const auto dy = to_storage<S>(rng.vec(size_t(n)));
  const bool vec = off == 0;
  same_bits(name("swiglu fwd+bwd", storage_name<S>(), n, off), vec, [&] {
    Shifted<S> g(gate, off), u(up, off), d(dy, off), out(std::vector<S>(size_t(n)), off);
    Shifted<S> dg(std::vector<S>(size_t(n)), off), du(std::vector<S>(size_t(n)), off);
    cuda::swiglu_forward(out.get(), g.get(), u.get(), n);
    cuda::swiglu_backward(dg.get(), du.get(), d.get(), g.get(), u.get(), n);
    cuda::swiglu_backward(d.get(), static_cast<S*>(nullptr), d.get(), g.get(), u.get(), n);  // dgate over dout
    Bytes b;
    append_bytes(b, out.download());
    append_bytes(b, dg.download());
    append_bytes(b, du.download());
    append_bytes(b, d.download());
    return b;
  });
  same_bits(name("gelu fwd+bwd", storage_name<S>(), n, off), vec, [&] {
    Shifted<S> z(gate, off), d(dy, off), out(std::vector<S>(size_t(n)), off);
    cuda::gelu_forward(out.get(), z.get(), n);
    cuda::gelu_backward(d.get(), d.get(), z.get(), n);  // in place over dout
    Bytes b;
    append_bytes(b, out.download());
    append_bytes(b, d.download());
    return b;
  });
}

// Both conversions, with the values rounding must get right: halfway cases (ties to even), infinities, NaN,
// subnormals, the largest finite values.
void convert_case(int64_t n, size_t off, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x = rng.vec(size_t(n), -3, 3);
  const float specials[] = {INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 3.4e38f, 1.00390625f, 1.01171875f, -0.f};
  for (size_t i = 0; i < x.size() && i < 9; i++) x[i * 3 % x.size()] = specials[i];
  const std::vector<bf16> xb = to_bf16(rng.vec(size_t(n), -100, 100));
  same_bits(name("convert f32<->bf16", "mixed", n, off), off == 0, [&] {
    Shifted<float> f(x, off), back(std::vector<float>(size_t(n)), off);
    Shifted<bf16> b(std::vector<bf16>(size_t(n)), off), bin(xb, off);
    cuda::convert(b.get(), f.get(), n);
    cuda::convert(back.get(), bin.get(), n);
    Bytes r;
    append_bytes(r, b.download());
    append_bytes(r, back.download());
    return r;
  });
}

template <class G>
void adamw_case(int64_t n, size_t off, bool bf16_copy, uint64_t seed) {
  Rng rng(seed);
  const auto p0 = rng.vec(size_t(n), -1, 1), m0 = rng.vec(size_t(n), -1e-3, 1e-3), v0 = rng.vec(size_t(n), 0, 1e-6);
  const auto g = to_storage<G>(rng.vec(size_t(n), -2e-3, 2e-3));
  cuda::AdamWConfig c;
  c.lr = 2e-3f;
  c.step = 7;
  c.grad_scale = 0.5f;
  c.weight_decay = 0.1f;
  same_bits(name(bf16_copy ? "adamw (+bf16 copy)" : "adamw", storage_name<G>(), n, off), off == 0, [&] {
    Shifted<float> p(p0, off), m(m0, off), v(v0, off);
    Shifted<G> dg(g, off);
    Shifted<bf16> pb(std::vector<bf16>(size_t(n)), off);
    for (int step = 0; step < 2; step++) cuda::adamw_step(p.get(), m.get(), v.get(), dg.get(), n, c, bf16_copy ? pb.get() : nullptr);
    Bytes r;
    append_bytes(r, p.download());
    append_bytes(r, m.download());
    append_bytes(r, v.download());
    append_bytes(r, pb.download());
    return r;
  });
}

template <class S>
void rope_case(int64_t T, int H, int D, int64_t stride, size_t off, bool expect_vector, uint64_t seed) {
  Rng rng(seed);
  const auto x = to_storage<S>(rng.vec(size_t(T * stride), -2, 2));
  const auto cs = rng.vec(size_t(T * D), -1, 1), sn = rng.vec(size_t(T * D), -1, 1);
  const std::string what = name("rope fwd+bwd", storage_name<S>(), T * H * D, off) + " D=" + std::to_string(D) +
                           " stride=" + std::to_string(stride);
  same_bits(what, expect_vector, [&] {
    Shifted<S> a(x, off), b(x, off);
    DeviceBuffer<float> c(cs), s(sn);
    cuda::rope_forward(a.get(), c.get(), s.get(), T, H, D, stride);
    cuda::rope_backward(b.get(), c.get(), s.get(), T, H, D, stride);
    Bytes r;
    append_bytes(r, a.download());
    append_bytes(r, b.download());
    return r;
  });
}

template <class D, class S>
void kv_case(int64_t cap, int64_t pos, int64_t T, int64_t row, int64_t stride, size_t off, bool expect_vector,
             uint64_t seed) {
  Rng rng(seed);
  const auto k = to_storage<S>(rng.vec(size_t(T * stride), -3, 3)), v = to_storage<S>(rng.vec(size_t(T * stride), -3, 3));
  const auto k0 = to_storage<D>(rng.vec(size_t(cap * row))), v0 = to_storage<D>(rng.vec(size_t(cap * row)));
  const std::string what = name("kv_append", (std::string(storage_name<S>()) + "->" + storage_name<D>()).c_str(),
                                T * row, off) + " row=" + std::to_string(row) + " stride=" + std::to_string(stride);
  same_bits(what, expect_vector, [&] {
    Shifted<D> kc(k0, off), vc(v0, off);
    Shifted<S> kn(k, off), vn(v, off);
    cuda::kv_append(kc.get(), vc.get(), kn.get(), vn.get(), pos, T, row, stride, stride, cap);
    Bytes r;
    append_bytes(r, kc.download());
    append_bytes(r, vc.download());
    return r;
  });
}

void kv_at_case() {
  Rng rng(81);
  const int64_t cap = 20, T = 3, row = 4 * 16, stride = 3 * row;
  const auto k = to_bf16(rng.vec(size_t(T * stride))), v = to_bf16(rng.vec(size_t(T * stride)));
  same_bits("vec16 kv_append_at bf16 (device position)", true, [&] {
    DeviceBuffer<bf16> kc(to_bf16(std::vector<float>(size_t(cap * row)))), vc(to_bf16(std::vector<float>(size_t(cap * row))));
    DeviceBuffer<bf16> kn(k), vn(v);
    DeviceBuffer<int32_t> pos(std::vector<int32_t>{11});
    cuda::kv_append_at(kc.get(), vc.get(), kn.get(), vn.get(), pos.get(), T, row, stride, stride);
    Bytes r;
    append_bytes(r, kc.download());
    append_bytes(r, vc.download());
    return r;
  });
}

template <class S>
void scatter_case(int64_t T, int64_t D, size_t off, bool expect_vector, uint64_t seed) {
  Rng rng(seed);
  const int64_t n = 6;
  const std::vector<int32_t> rows = {3, -1, 0, int32_t(T - 1), int32_t(T), 7};  // -1 and T: skipped
  const auto x0 = to_storage<S>(rng.vec(size_t(T * D))), src = to_storage<S>(rng.vec(size_t(n * D)));
  same_bits(name("scatter_rows fwd+bwd", storage_name<S>(), n * D, off) + " D=" + std::to_string(D), expect_vector,
            [&] {
              Shifted<S> x(x0, off), s(src, off), dx(x0, off), ds(src, off);
              DeviceBuffer<int32_t> r(rows);
              cuda::scatter_rows(x.get(), s.get(), r.get(), n, D, T);
              cuda::scatter_rows_backward(ds.get(), dx.get(), r.get(), n, D, T);
              Bytes b;
              append_bytes(b, x.download());
              append_bytes(b, ds.download());
              append_bytes(b, dx.download());
              return b;
            });
}

template <class S>
void gather_case(int64_t C, size_t off, bool expect_vector, uint64_t seed) {
  Rng rng(seed);
  const int64_t V = 11, T = 9;
  const std::vector<int32_t> ids = {3, 0, 10, 3, -1, 11, 7, 7, 2};  // -1 and 11: out of range, zero rows
  const auto table = to_storage<S>(rng.vec(size_t(V * C)));
  same_bits(name("embedding_forward", storage_name<S>(), T * C, off) + " C=" + std::to_string(C), expect_vector, [&] {
    Shifted<S> tab(table, off), out(to_storage<S>(rng.vec(size_t(T * C))), off);
    DeviceBuffer<int32_t> d_ids(ids);
    cuda::embedding_forward(out.get(), d_ids.get(), T, tab.get(), V, C);
    Bytes b;
    append_bytes(b, out.download());
    return b;
  });
}

void sum_groups_case(int64_t groups, int64_t n, size_t off, bool expect_vector, uint64_t seed) {
  Rng rng(seed);
  const auto in = rng.vec(size_t(groups * n)), out0 = rng.vec(size_t(n));
  same_bits(name("sum_groups_add", "f32", n, off) + " groups=" + std::to_string(groups), expect_vector, [&] {
    Shifted<float> d_in(in, off), d_out(out0, off);
    cuda::sum_groups_add(d_out.get(), d_in.get(), groups, n);
    Bytes b;
    append_bytes(b, d_out.download());
    return b;
  });
}

// The vector path's outputs within `rtol` (relative to the largest output) of the scalar path's; rtol 0: the same
// bits (as floats: -0 == +0, and the inputs hold no NaN).
template <class S>
void close_outputs(const std::string& what, const std::vector<S>& a, const std::vector<S>& b, double rtol) {
  const auto fa = to_float(a), fb = to_float(b);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < fa.size(); i++) {
    worst = std::max(worst, std::fabs(double(fa[i]) - double(fb[i])));
    scale = std::max(scale, std::fabs(double(fb[i])));
  }
  bool same = fa.size() == fb.size();
  for (size_t i = 0; same && i < fa.size(); i++) same = std::memcmp(&fa[i], &fb[i], sizeof(float)) == 0;
  if (rtol == 0)
    check_true(what + ": 16-byte path bit-identical to the scalar kernel (max diff " + std::to_string(worst) + ")", same);
  else
    check_true(what + ": 16-byte path within " + std::to_string(rtol) + " (relative) of the scalar kernel (max diff " +
                   std::to_string(worst) + ")",
               fa.size() == fb.size() && worst <= rtol * scale);
}

template <class S>
void rmsnorm_case(int64_t N, int64_t C, uint64_t seed, int vector_calls = 2) {
  Rng rng(seed);
  const auto x = to_storage<S>(rng.vec(size_t(N * C), -2, 2)), w = to_storage<S>(rng.vec(size_t(C), 0.5, 1.5));
  const auto dy = to_storage<S>(rng.vec(size_t(N * C))), dx0 = to_storage<S>(rng.vec(size_t(N * C)));
  std::vector<S> out[2], dx[2];
  std::vector<float> rstd[2], dw[2];
  for (int path = 0; path < 2; path++) {
    ScopedEnv e("VREFLECT_ELEMENTWISE", path ? "vector" : "scalar", cuda::env_switches_changed);
    const int64_t c0 = cuda::elementwise_vector_calls();
    DeviceBuffer<S> d_x(x), d_w(w), d_out(size_t(N * C)), d_dy(dy), d_dx(dx0);
    DeviceBuffer<float> d_r{size_t(N)}, d_dw(std::vector<float>(size_t(C), 0.25f));
    cuda::rmsnorm_forward(d_out.get(), d_r.get(), d_x.get(), d_w.get(), N, C, 1e-6f);
    cuda::rmsnorm_backward(d_dx.get(), d_dw.get(), d_dy.get(), d_x.get(), d_w.get(), d_r.get(), N, C);
    out[path] = d_out.download(), dx[path] = d_dx.download(), rstd[path] = d_r.download(), dw[path] = d_dw.download();
    check_true("vec16 rmsnorm " + std::string(storage_name<S>()) + " C=" + std::to_string(C) + (path ? ": 16-byte path" : ": scalar path"),
               cuda::elementwise_vector_calls() - c0 == (path ? vector_calls : 0));
  }
  const std::string tag = "vec16 rmsnorm " + std::string(storage_name<S>()) + " [" + std::to_string(N) + ", " + std::to_string(C) + "]";
  close_outputs(tag + " out", out[1], out[0], 0);
  close_outputs(tag + " rstd", rstd[1], rstd[0], 0);
  close_outputs(tag + " dinp", dx[1], dx[0], 0);
  close_outputs(tag + " dweight (atomicAdd across blocks)", dw[1], dw[0], 1e-5);
}

void rmsnorm_to_bf16_case(int64_t N, int64_t C, uint64_t seed) {
  Rng rng(seed);
  const auto x = rng.vec(size_t(N * C), -2, 2), w = rng.vec(size_t(C), 0.5, 1.5);
  std::vector<bf16> out[2];
  for (int path = 0; path < 2; path++) {
    ScopedEnv e("VREFLECT_ELEMENTWISE", path ? "vector" : "scalar", cuda::env_switches_changed);
    DeviceBuffer<float> d_x(x), d_w(w);
    DeviceBuffer<bf16> d_out(size_t(N * C));
    cuda::rmsnorm_to_bf16(d_out.get(), d_x.get(), d_w.get(), N, C, 1e-6f);
    out[path] = d_out.download();
  }
  close_outputs("vec16 rmsnorm_to_bf16 [" + std::to_string(N) + ", " + std::to_string(C) + "]", out[1], out[0], 0);
}

// Forward, then the backward on given mean / rstd: every output bit for bit.
template <class S>
void layernorm_case(int64_t N, int64_t C, bool bias, uint64_t seed) {
  Rng rng(seed);
  const auto x = to_storage<S>(rng.vec(size_t(N * C), -2, 2)), w = to_storage<S>(rng.vec(size_t(C), 0.5, 1.5));
  const auto b = to_storage<S>(rng.vec(size_t(C))), dy = to_storage<S>(rng.vec(size_t(N * C)));
  const auto dx0 = to_storage<S>(rng.vec(size_t(N * C)));
  const auto mean = rng.vec(size_t(N), -0.1, 0.1), rstd = rng.vec(size_t(N), 0.5, 2);
  std::vector<S> out[2], dx[2];
  std::vector<float> m[2], r[2], dw[2], db[2];
  for (int path = 0; path < 2; path++) {
    ScopedEnv e("VREFLECT_ELEMENTWISE", path ? "vector" : "scalar", cuda::env_switches_changed);
    const int64_t c0 = cuda::elementwise_vector_calls();
    DeviceBuffer<S> d_x(x), d_w(w), d_b(b), d_out{size_t(N * C)}, d_dy(dy), d_dx(dx0);
    DeviceBuffer<float> d_m{size_t(N)}, d_r{size_t(N)}, d_gm(mean), d_gr(rstd);
    DeviceBuffer<float> d_dw(std::vector<float>(size_t(C), 0.25f)), d_db(std::vector<float>(size_t(C), -0.5f));
    cuda::layernorm_forward(d_out.get(), d_m.get(), d_r.get(), d_x.get(), d_w.get(), bias ? d_b.get() : nullptr, N, C, 1e-5f);
    cuda::layernorm_backward(d_dx.get(), d_dw.get(), d_db.get(), d_dy.get(), d_x.get(), d_w.get(), d_gm.get(), d_gr.get(), N, C);
    out[path] = d_out.download(), m[path] = d_m.download(), r[path] = d_r.download();
    dx[path] = d_dx.download(), dw[path] = d_dw.download(), db[path] = d_db.download();
    check_true("vec16 layernorm C=" + std::to_string(C) + (path ? ": 16-byte path" : ": scalar path"),
               (cuda::elementwise_vector_calls() - c0 == 2) == bool(path));
  }
  const std::string tag = "vec16 layernorm " + std::string(storage_name<S>()) + " [" + std::to_string(N) + ", " + std::to_string(C) + "]";
  close_outputs(tag + " out", out[1], out[0], 0);
  close_outputs(tag + " mean", m[1], m[0], 0);
  close_outputs(tag + " rstd", r[1], r[0], 0);
  close_outputs(tag + " dinp", dx[1], dx[0], 0);
  check_true(tag + " dweight / dbias bit-identical to the scalar kernel", dw[1] == dw[0] && db[1] == db[0]);
}

template <class S>
void cross_entropy_case(int64_t N, int64_t V, uint64_t seed) {
  Rng rng(seed);
  const auto logits = to_storage<S>(rng.vec(size_t(N * V), -8, 8));
  std::vector<int32_t> tgt{std::vector<int32_t>(size_t(N))};
  for (int64_t n = 0; n < N; n++) tgt[size_t(n)] = int32_t((n * 7919 + 13) % V);
  if (N > 1) tgt[1] = -100;  // ignored row
  std::vector<float> loss[2];
  std::vector<S> dl[2];
  for (int path = 0; path < 2; path++) {
    ScopedEnv e("VREFLECT_ELEMENTWISE", path ? "vector" : "scalar", cuda::env_switches_changed);
    const int64_t c0 = cuda::elementwise_vector_calls();
    DeviceBuffer<S> d_l(logits);
    DeviceBuffer<int32_t> d_t(tgt);
    DeviceBuffer<float> d_loss{size_t(N)};
    cuda::cross_entropy_forward_backward(d_loss.get(), d_l.get(), d_l.get(), d_t.get(), N, V, 0.5f);  // in place
    loss[path] = d_loss.download(), dl[path] = d_l.download();
    check_true("vec16 cross_entropy V=" + std::to_string(V) + (path ? ": 16-byte path" : ": scalar path"),
               (cuda::elementwise_vector_calls() - c0 == 1) == bool(path));
  }
  const std::string tag = "vec16 cross_entropy " + std::string(storage_name<S>()) + " [" + std::to_string(N) + ", " + std::to_string(V) + "]";
  close_outputs(tag + " losses", loss[1], loss[0], 0);
  close_outputs(tag + " dlogits", dl[1], dl[0], 0);
}

}  // namespace

VR_TEST(cuda_vec16_pointwise) {
  for (size_t off : {size_t(0), size_t(1)}) {
    swiglu_gelu_case<float>(4096 + 5, off, 1);  // 512 chunks and a tail of 5
    swiglu_gelu_case<bf16>(3001, off, 2);
    convert_case(1003, off, 3);
    adamw_case<float>(2051, off, true, 4);
    adamw_case<bf16>(1000, off, false, 5);
  }
  swiglu_gelu_case<bf16>(5, 0, 6);  // shorter than one chunk: the tail only
  convert_case(64, 0, 7);
}

VR_TEST(cuda_vec16_rows) {
  rope_case<bf16>(5, 3, 128, 3 * 128, 0, true, 11);
  rope_case<float>(4, 2, 64, 2 * 64 + 32, 0, true, 12);  // a slice of a wider (fused qkv) row
  rope_case<bf16>(4, 2, 64, 2 * 64 + 4, 0, false, 13);   // stride not a multiple of 8: scalar
  rope_case<bf16>(3, 2, 72, 2 * 72, 0, false, 14);       // D / 2 = 36 pairs: not groups of 8
  rope_case<bf16>(3, 2, 128, 2 * 128, 1, false, 15);     // misaligned base
  kv_case<bf16, bf16>(33, 5, 9, 4 * 16, 4 * 16, 0, true, 21);
  kv_case<bf16, float>(33, 32, 1, 80, 160, 0, true, 22);
  kv_case<float, float>(40, 13, 27, 64, 3 * 64, 0, true, 23);
  kv_case<bf16, bf16>(33, 5, 9, 60, 60, 0, false, 24);  // row of 60: scalar
  kv_case<bf16, bf16>(33, 5, 9, 64, 64, 1, false, 25);  // misaligned
  kv_at_case();
  scatter_case<bf16>(31, 296, 0, true, 31);
  scatter_case<float>(20, 40, 0, true, 32);
  scatter_case<bf16>(31, 300, 0, false, 33);  // D not a multiple of 8
  scatter_case<float>(20, 40, 1, false, 34);
  gather_case<bf16>(296, 0, true, 35);
  gather_case<float>(36, 0, false, 36);  // 36 fp32 = 144 bytes: not whole chunks of 8
  gather_case<bf16>(64, 1, false, 37);
  sum_groups_case(3, 1000, 0, true, 38);
  sum_groups_case(2, 1001, 0, false, 39);
}

VR_TEST(cuda_vec16_reductions) {
  rmsnorm_case<float>(7, 96, 41);
  rmsnorm_case<bf16>(300, 3584, 42);   // the 7B's rows, more rows than backward blocks
  rmsnorm_case<float>(2, 6000, 43);  // 750 chunks: more than the backward keeps in registers (re-reading loop)
  rmsnorm_case<float>(2, 8800, 50, 1);  // 1100 chunks: the forward re-reads too; the backward's windows and dw
                                        // exceed 48 KiB of shared memory above C = 6112: its scalar kernel
  rmsnorm_to_bf16_case(5, 3584, 44);
  rmsnorm_to_bf16_case(3, 1280, 45);
  layernorm_case<float>(37, 1000, true, 48);
  layernorm_case<bf16>(9, 3584, false, 49);
  cross_entropy_case<float>(3, 4000, 46);
  cross_entropy_case<bf16>(3, 152064, 47);  // the LM head's vocabulary
}

#if defined(VR_CUDA_EMULATED)
// The 16-byte row kernels' shared-memory traffic (window transposes, RMSNorm's dw) at ideal wavefronts: 32 bytes a
// lane through vec::store8_shared / load8_shared. Row widths of whole windows (8 x blockDim columns), so no warp
// diverges and the emulator's pairing of lanes is exact. Seen to fail with the plain two-store order (2-way).
VR_TEST(cuda_vec16_banks_conflict_free) {
  namespace banks = cudaemu::banks;
  banks::Recorder rec;
  Rng rng(60);
  const int64_t N = 4, C = 4096, V = 8192;
  {
    DeviceBuffer<bf16> x(to_bf16(rng.vec(size_t(N * C)))), w(to_bf16(rng.vec(size_t(C)))), y{size_t(N * C)};
    DeviceBuffer<bf16> dy(to_bf16(rng.vec(size_t(N * C)))), dx(to_bf16(rng.vec(size_t(N * C))));
    DeviceBuffer<float> r{size_t(N)}, m{size_t(N)}, dw{std::vector<float>(size_t(C))}, db{std::vector<float>(size_t(C))};
    cuda::rmsnorm_forward(y.get(), r.get(), x.get(), w.get(), N, C, 1e-6f);
    cuda::rmsnorm_backward(dx.get(), dw.get(), dy.get(), x.get(), w.get(), r.get(), N, C);
    cuda::layernorm_forward(y.get(), m.get(), r.get(), x.get(), w.get(), nullptr, N, C, 1e-5f);
    cuda::layernorm_backward(dx.get(), dw.get(), db.get(), dy.get(), x.get(), w.get(), m.get(), r.get(), N, C);
    DeviceBuffer<float> xf(rng.vec(size_t(N * C))), wf(rng.vec(size_t(C)));
    cuda::rmsnorm_to_bf16(y.get(), xf.get(), wf.get(), N, C, 1e-6f);
    DeviceBuffer<bf16> logits(to_bf16(rng.vec(size_t(N * V))));
    DeviceBuffer<int32_t> tgt(std::vector<int32_t>{1, 2, 3, 4});
    DeviceBuffer<float> loss{size_t(N)};
    cuda::cross_entropy_forward_backward(loss.get(), logits.get(), logits.get(), tgt.get(), N, V, 1.f);
    cuda_ok(cudaDeviceSynchronize(), "sync");
  }
  int audited = 0;
  for (const banks::KernelTotals& k : rec.kernels()) {
    if (k.name.find("vec_kernel") == std::string::npos && k.name.find("cross_entropy") == std::string::npos) continue;
    for (int o = 0; o < banks::kOps; o++) {
      const banks::OpTotals& t = k.ops[o];
      if (!t.instructions) continue;
      audited++;
      check_true("vec16 banks " + k.name + " " + banks::op_name(banks::Op(o)) + ": " + std::to_string(t.instructions) +
                     " instr, " + std::to_string(t.wavefronts) + " wavefronts (ideal " + std::to_string(t.ideal) +
                     "), " + std::to_string(t.partial) + " partial" + (t.worst > 1 ? ", e.g. " + t.worst_example : ""),
                 t.wavefronts == t.ideal && t.partial == 0);
    }
  }
  check_true("vec16 banks: the rmsnorm fwd / bwd, rmsnorm_to_bf16, layernorm fwd / dinp and cross-entropy 16-byte "
             "kernels were audited (" + std::to_string(audited) + " op kinds)", audited >= 7);
}
#endif

// VREFLECT_ELEMENTWISE is read once, like the attention switches (env_switch.h): a change is seen only after
// cuda::env_switches_changed; a bad value is a one-line error naming the allowed values, at every call until fixed.
VR_TEST(cuda_vec16_switch) {
  DeviceBuffer<float> a(std::vector<float>(16, 1.f)), b(std::vector<float>(16, 1.f)), c(16);
  const auto vector_calls = [&] {
    const int64_t c0 = cuda::elementwise_vector_calls();
    cuda::swiglu_forward(c.get(), a.get(), b.get(), 16);
    return cuda::elementwise_vector_calls() - c0;
  };
  {
    ScopedEnv e("VREFLECT_ELEMENTWISE", "scalar", cuda::env_switches_changed);
    check_true("VREFLECT_ELEMENTWISE=scalar: the one-element kernel", vector_calls() == 0);
    setenv("VREFLECT_ELEMENTWISE", "vector", 1);  // unseen: read once, not per call
    check_true("VREFLECT_ELEMENTWISE is read once, not per call", vector_calls() == 0);
    cuda::env_switches_changed();
    check_true("... and again after env_switches_changed (vector: the 16-byte kernel)", vector_calls() == 1);
  }
  ScopedEnv e("VREFLECT_ELEMENTWISE", "fast", cuda::env_switches_changed);
  for (int i = 0; i < 2; i++) {  // a bad value is not kept: every call says so
    std::string msg;
    try {
      cuda::swiglu_forward(c.get(), a.get(), b.get(), 16);
    } catch (const std::exception& ex) {
      msg = ex.what();
    }
    check_true("VREFLECT_ELEMENTWISE=fast is a one-line error naming the allowed values, call " + std::to_string(i) +
                   " (" + msg + ")",
               msg == "VREFLECT_ELEMENTWISE=fast is not one of auto, vector, scalar");
  }
}

}  // namespace vr::test
