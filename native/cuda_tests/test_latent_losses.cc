// CUDA latent losses (stage-1 symmetric MSE, stage-2 MSE and KL attention transfer) vs the CPU backend
// (train/latent_losses.cc) by the flash-attention rule against fp64 references written here as plain loops.
// Values are fp64 on both sides, so their rule uses a relative floor of 1e-12; gradients follow the usual rule
// (bf16 gradients: the CPU result rounded to bf16 is the baseline). Also: the non-finite guard, the clamp mask,
// a repeated token index (the teacher scatter keeps the last one), an invalid index (CPU throws, CUDA flags the
// box) and run-to-run bit-identical values.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_tests/device_buffer.h"
#include "tests/harness.h"
#include "train/latent_losses.h"

namespace vr::test {
namespace {

using cuda::LossValue;

LossValue fetch(const DeviceBuffer<LossValue>& d) { return d.download()[0]; }

// err(ours) <= 2 err(cpu) + 1e-12 max(1, |ref|), all in fp64.
void check_value(const std::string& what, double ours, double cpu, double ref) {
  const double e = std::fabs(ours - ref), eb = std::fabs(cpu - ref);
  const double bound = 2 * eb + 1e-12 * std::max(1.0, std::fabs(ref));
  char line[160];
  std::snprintf(line, sizeof line, ": %.10g err %.3g cpu err %.3g bound %.3g", ours, e, eb, bound);
  report(e <= bound, what + line);
}

double clamp64(double x) { return std::min(1e4, std::max(-1e4, x)); }

template <class S>
void align_mse_case(int64_t n, uint64_t seed) {
  Rng rng(seed);
  auto H = rng.vec(size_t(n), -2, 2), Z = rng.vec(size_t(n), -2, 2);
  H[3] = 2e4f;  // outside the clamp: value uses 1e4, no gradient to H[3]
  Z[7] = -3e4f;
  H = stored<S>(H);
  Z = stored<S>(Z);
  const auto dH0 = stored<S>(rng.vec(size_t(n), -0.1, 0.1)), dZ0 = stored<S>(rng.vec(size_t(n), -0.1, 0.1));
  const float w = 0.75f;
  const std::string tag = std::string("cuda latent ") + storage_name<S>() + " n=" + std::to_string(n);

  // fp64 references
  double align64 = 0, mse64 = 0;
  std::vector<double> dH64 = to_double(dH0), dZ64 = to_double(dZ0), dmse64 = to_double(dH0);
  for (int64_t i = 0; i < n; i++) {
    const double h = H[size_t(i)], z = Z[size_t(i)], d = clamp64(h) - clamp64(z);
    align64 += d * d;
    mse64 += (h - z) * (h - z);
    if (std::fabs(h) <= 1e4) dH64[size_t(i)] += double(w) / double(n) * d;
    if (std::fabs(z) <= 1e4) dZ64[size_t(i)] -= double(w) / double(n) * d;
    dmse64[size_t(i)] += 2.0 * double(w) / double(n) * (h - z);
  }
  align64 /= double(n);
  mse64 /= double(n);

  // CPU backend
  const double align_cpu = vr::align_value(H.data(), Z.data(), n), mse_cpu = vr::mse_value(H.data(), Z.data(), n);
  std::vector<float> dH_cpu = dH0, dZ_cpu = dZ0, dmse_cpu = dH0;
  vr::align_grad(H.data(), Z.data(), n, w, dH_cpu.data(), dZ_cpu.data());
  vr::mse_grad(H.data(), Z.data(), n, w, dmse_cpu.data());
  dH_cpu = stored<S>(dH_cpu);
  dZ_cpu = stored<S>(dZ_cpu);
  dmse_cpu = stored<S>(dmse_cpu);

  // CUDA
  DeviceBuffer<S> d_H(to_storage<S>(H)), d_Z(to_storage<S>(Z)), d_dH(to_storage<S>(dH0)), d_dZ(to_storage<S>(dZ0));
  DeviceBuffer<S> d_dm(to_storage<S>(dH0));
  DeviceBuffer<LossValue> d_align(1), d_align2(1), d_mse(1);
  cuda::align_value(d_align.get(), d_H.get(), d_Z.get(), n);
  cuda::align_value(d_align2.get(), d_H.get(), d_Z.get(), n);
  cuda::mse_value(d_mse.get(), d_H.get(), d_Z.get(), n);
  cuda::align_grad(d_dH.get(), d_dZ.get(), d_H.get(), d_Z.get(), n, w);
  cuda::mse_grad(d_dm.get(), d_H.get(), d_Z.get(), n, w);
  const LossValue va = fetch(d_align), va2 = fetch(d_align2), vm = fetch(d_mse);
  const auto dH = to_float(d_dH.download()), dZ = to_float(d_dZ.download()), dm = to_float(d_dm.download());

  check_value(tag + " align value", va.value, align_cpu, align64);
  check_true(tag + " align value: no non-finite input, no bad index", va.nonfinite == 0 && va.bad == -1);
  check_true(tag + " align value bit-identical run to run", std::memcmp(&va.value, &va2.value, sizeof(double)) == 0);
  check_value(tag + " mse value", vm.value, mse_cpu, mse64);
  check_rule(tag + " align dH", dH.data(), dH_cpu.data(), dH64.data(), dH.size(), 1e-7);
  check_rule(tag + " align dZ", dZ.data(), dZ_cpu.data(), dZ64.data(), dZ.size(), 1e-7);
  check_true(tag + " align: no gradient through a saturated clamp", dH[3] == dH_cpu[3] && dH[3] == float(dH0[3]) &&
                                                                        dZ[7] == float(dZ0[7]));
  check_rule(tag + " mse da", dm.data(), dmse_cpu.data(), dmse64.data(), dm.size(), 1e-7);

  // The non-finite guard: the CPU trainer's all_finite(H) && all_finite(Z) is nonfinite == 0 here.
  auto Hbad = H, Zbad = Z;
  Hbad[size_t(n / 2)] = NAN;
  Zbad[size_t(n - 1)] = INFINITY;
  DeviceBuffer<S> d_Hb(to_storage<S>(Hbad)), d_Zb(to_storage<S>(Zbad));
  DeviceBuffer<LossValue> d_vb(1), d_mb(1);
  cuda::align_value(d_vb.get(), d_Hb.get(), d_Zb.get(), n);
  cuda::mse_value(d_mb.get(), d_Hb.get(), d_Z.get(), n);
  const LossValue vb = fetch(d_vb), mb = fetch(d_mb);
  check_true(tag + " non-finite inputs counted (2 and 1), value NaN, as the CPU guard refuses them",
             vb.nonfinite == 2 && std::isnan(vb.value) && mb.nonfinite == 1 && std::isnan(mb.value) &&
                 !(vr::all_finite(Hbad.data(), n) && vr::all_finite(Zbad.data(), n)));
}

// ---- KL attention transfer --------------------------------------------------------------------------------
struct KlCase {
  int nq = 0;
  std::vector<int64_t> a_off{0}, t_off{0};
  std::vector<int32_t> cu_box{0}, local_idx;
  std::vector<float> A, At;
  int64_t nb() const { return int64_t(a_off.size()) - 1; }
  AttnTransfer cpu() const {
    AttnTransfer t;
    t.nb = nb();
    t.nq = nq;
    t.A = A.data();
    t.a_off = a_off.data();
    t.At = At.data();
    t.t_off = t_off.data();
    t.local_idx = local_idx.data();
    t.cu_box = cu_box.data();
    return t;
  }
};

// Boxes of S_b student positions and N_b teacher tokens; rows of A and At are probability-like (positive, some
// teacher entries exactly 0 so the T > 0 rule matters). `dup` repeats a position inside box 0.
KlCase make_kl(Rng& rng, int nq, const std::vector<std::pair<int, int>>& boxes, bool dup) {
  KlCase c;
  c.nq = nq;
  for (const auto& [S, N] : boxes) {
    std::vector<int32_t> perm(static_cast<size_t>(S));
    for (int s = 0; s < S; s++) perm[size_t(s)] = s;
    for (int s = S - 1; s > 0; s--) std::swap(perm[size_t(s)], perm[size_t(rng.next() % uint64_t(s + 1))]);
    for (int j = 0; j < N; j++) c.local_idx.push_back(perm[size_t(j)]);
    c.cu_box.push_back(c.cu_box.back() + N);
    for (int e = 0; e < nq * S; e++) c.A.push_back(float(rng.uniform(1e-4, 1.0) / S));
    for (int e = 0; e < nq * N; e++) c.At.push_back(rng.uniform() < 0.15 ? 0.f : float(rng.uniform(1e-3, 1.0) / N));
    c.a_off.push_back(c.a_off.back() + int64_t(nq) * S);
    c.t_off.push_back(c.t_off.back() + int64_t(nq) * N);
  }
  if (dup) c.local_idx[2] = c.local_idx[5];  // box 0: token 5 (the later one) must win position local_idx[5]
  return c;
}

// fp64 reference: scatter the teacher by assignment in token order, then the KL and its gradient.
void kl_ref(const KlCase& c, double w, double& value, std::vector<double>& dA) {
  value = 0;
  for (int64_t b = 0; b < c.nb(); b++) {
    const int64_t S = (c.a_off[size_t(b + 1)] - c.a_off[size_t(b)]) / c.nq, N = c.cu_box[size_t(b + 1)] - c.cu_box[size_t(b)];
    std::vector<double> T(size_t(c.nq * S), 0.0);
    for (int64_t j = 0; j < N; j++)
      for (int q = 0; q < c.nq; q++)
        T[size_t(q * S + c.local_idx[size_t(c.cu_box[size_t(b)] + j)])] = c.At[size_t(c.t_off[size_t(b)] + q * N + j)];
    for (size_t e = 0; e < T.size(); e++) {
      if (T[e] <= 0) continue;
      const double a = c.A[size_t(c.a_off[size_t(b)]) + e];
      value += T[e] * (std::log(T[e]) - std::log(a + 1e-9));
      dA[size_t(c.a_off[size_t(b)]) + e] -= w * T[e] / (a + 1e-9) / double(c.nb());
    }
  }
  value /= double(c.nb());
}

struct KlDevice {
  DeviceBuffer<float> A, At;
  DeviceBuffer<int64_t> a_off, t_off;
  DeviceBuffer<int32_t> local_idx, cu_box;
  explicit KlDevice(const KlCase& c)
      : A(c.A), At(c.At), a_off(c.a_off), t_off(c.t_off), local_idx(c.local_idx), cu_box(c.cu_box) {}
  cuda::KlArgs args(const KlCase& c) const {
    cuda::KlArgs t;
    t.nb = c.nb();
    t.nq = c.nq;
    t.A = A.get();
    t.a_off = a_off.get();
    t.At = At.get();
    t.t_off = t_off.get();
    t.local_idx = local_idx.get();
    t.cu_box = cu_box.get();
    t.a_total = c.a_off.back();
    return t;
  }
};

void kl_case(const std::vector<std::pair<int, int>>& boxes, bool dup, uint64_t seed) {
  Rng rng(seed);
  const KlCase c = make_kl(rng, 8, boxes, dup);
  const float w = 0.3f;
  const std::string tag = "cuda kl nb=" + std::to_string(c.nb()) + (dup ? " repeated index" : "");
  const auto dA0 = rng.vec(c.A.size(), -0.1, 0.1);
  double v64 = 0;
  std::vector<double> dA64 = to_double(dA0);
  kl_ref(c, w, v64, dA64);
  const double v_cpu = vr::kl_value(c.cpu());
  std::vector<float> dA_cpu = dA0;
  vr::kl_grad(c.cpu(), w, dA_cpu.data());

  KlDevice d(c);
  DeviceBuffer<LossValue> d_v(1), d_v2(1);
  DeviceBuffer<float> d_dA(dA0);
  cuda::kl_value(d_v.get(), d.args(c));
  cuda::kl_value(d_v2.get(), d.args(c));
  cuda::kl_grad(d_dA.get(), d.args(c), w);
  const LossValue v = fetch(d_v), v2 = fetch(d_v2);
  const auto dA = d_dA.download();
  check_value(tag + " value", v.value, v_cpu, v64);
  check_true(tag + " value: no bad box, bit-identical run to run",
             v.bad == -1 && v.nonfinite == 0 && std::memcmp(&v.value, &v2.value, sizeof(double)) == 0);
  check_rule(tag + " dA", dA.data(), dA_cpu.data(), dA64.data(), dA.size(), 1e-7);
}

void kl_invalid_case() {
  Rng rng(77);
  KlCase c = make_kl(rng, 8, {{20, 6}, {15, 4}, {9, 9}}, false);
  c.local_idx[size_t(c.cu_box[1] + 2)] = 15;  // box 1 has 15 positions: index 15 is outside
  bool cpu_threw = false;
  try {
    vr::kl_value(c.cpu());
  } catch (const vr::Error&) {
    cpu_threw = true;
  }
  KlDevice d(c);
  DeviceBuffer<LossValue> d_v(1);
  const auto dA0 = rng.vec(c.A.size(), -0.1, 0.1);
  DeviceBuffer<float> d_dA(dA0);
  cuda::kl_value(d_v.get(), d.args(c));
  cuda::kl_grad(d_dA.get(), d.args(c), 1.0f);
  const LossValue v = fetch(d_v);
  const auto dA = d_dA.download();
  bool box1_untouched = true;
  for (int64_t e = c.a_off[1]; e < c.a_off[2]; e++) box1_untouched = box1_untouched && dA[size_t(e)] == dA0[size_t(e)];
  check_true("cuda kl: an index outside its box's positions flags that box (bad=1, value NaN) where the CPU throws",
             cpu_threw && v.bad == 1 && std::isnan(v.value));
  check_true("cuda kl_grad skips the flagged box", box1_untouched);
  // Sizes that disagree: box 2 lists 9 tokens but its teacher map has 8 columns.
  KlCase c2 = make_kl(rng, 8, {{20, 6}, {15, 4}, {9, 9}}, false);
  c2.At.resize(c2.At.size() - 8);
  c2.t_off.back() -= 8;
  KlDevice d2(c2);
  cuda::kl_value(d_v.get(), d2.args(c2));
  const LossValue v2 = fetch(d_v);
  check_true("cuda kl: a box whose token count differs from its teacher columns is flagged", v2.bad == 2);
}

}  // namespace

VR_TEST(cuda_latent_losses) {
  align_mse_case<float>(5000, 21);
  align_mse_case<float>(70001, 22);  // 69 partial sums
  align_mse_case<bf16>(3001, 23);
}

VR_TEST(cuda_kl_attention_transfer) {
  kl_case({{37, 12}, {50, 20}, {23, 5}}, false, 31);
  kl_case({{37, 12}, {50, 20}}, true, 32);
  kl_case({{300, 64}}, false, 33);  // more positions than threads
  kl_invalid_case();
  // no boxes: value 0, as on the CPU
  DeviceBuffer<LossValue> d_v(1);
  cuda::kl_value(d_v.get(), cuda::KlArgs{});
  const LossValue v = fetch(d_v);
  check_true("cuda kl with no boxes: value 0", v.value == 0.0 && v.bad == -1);
}

VR_TEST(cuda_latent_losses_errors) {
  bool threw = false;
  try {
    cuda::mse_value(nullptr, static_cast<const float*>(nullptr), nullptr, 4);
  } catch (const vr::Error& e) {
    threw = std::string(e.what()).find("null") != std::string::npos;
  }
  check_true("cuda mse_value with null buffers throws a one-line vr::Error", threw);
  threw = false;
  cuda::KlArgs t;
  t.nb = 2;
  t.nq = 0;
  try {
    cuda::kl_grad(nullptr, t, 1.f);
  } catch (const vr::Error& e) {
    threw = std::string(e.what()).find("nq") != std::string::npos;
  }
  check_true("cuda kl_grad with nq=0 throws", threw);
}

}  // namespace vr::test
