// CUDA exact-erf GELU (vs the CPU backend, flash-attention rule against fp64), KV-cache append (vs a plain copy
// loop: values move unchanged) and the greedy decoding step (vs the CPU generate loop's sequential penalty +
// argmax, written out here: it lives inside Session::generate).
#include <cmath>
#include <string>
#include <type_traits>

#include "cuda_tests/device_buffer.h"
#include "ops/activation.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

template <class S>
void gelu_case(int64_t n, uint64_t seed) {
  Rng rng(seed);
  const auto z = stored<S>(rng.vec(size_t(n), -6, 6)), dy = stored<S>(rng.vec(size_t(n)));
  const std::string tag = std::string("cuda gelu ") + storage_name<S>() + " n=" + std::to_string(n);
  std::vector<double> y64(static_cast<size_t>(n)), dz64(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) {
    const double x = z[size_t(i)];
    y64[size_t(i)] = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    dz64[size_t(i)] = dy[size_t(i)] * (0.5 * (1 + std::erf(x / std::sqrt(2.0))) +
                                       x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
  }
  std::vector<float> y_cpu(static_cast<size_t>(n)), dz_cpu(static_cast<size_t>(n));
  vr::gelu_erf_forward(y_cpu.data(), z.data(), n);
  vr::gelu_erf_backward(dz_cpu.data(), dy.data(), z.data(), n);
  y_cpu = stored<S>(y_cpu);
  dz_cpu = stored<S>(dz_cpu);
  DeviceBuffer<S> d_z(to_storage<S>(z)), d_y(static_cast<size_t>(n)), d_dy(to_storage<S>(dy));
  DeviceBuffer<S> d_dz(static_cast<size_t>(n)), d_inplace(to_storage<S>(dy));
  cuda::gelu_forward(d_y.get(), d_z.get(), n);
  cuda::gelu_backward(d_dz.get(), d_dy.get(), d_z.get(), n);
  cuda::gelu_backward(d_inplace.get(), d_inplace.get(), d_z.get(), n);  // dinp aliasing dout
  const auto y = to_float(d_y.download()), dz = to_float(d_dz.download());
  check_rule(tag + " out", y.data(), y_cpu.data(), y64.data(), y.size(), 1e-6);
  check_rule(tag + " dinp", dz.data(), dz_cpu.data(), dz64.data(), dz.size(), 1e-6);
  check_true(tag + " dinp written in place over dout equals the separate result", to_float(d_inplace.download()) == dz);
}

// kv_append<Src -> Dst>: rows pos.. of both caches get the (strided) new rows; every other row is untouched.
template <class D, class S>
void kv_case(int64_t cap, int64_t pos, int64_t T, int64_t row, int64_t stride, uint64_t seed) {
  Rng rng(seed);
  const auto k0 = stored<D>(rng.vec(size_t(cap * row))), v0 = stored<D>(rng.vec(size_t(cap * row)));
  const auto kn = stored<S>(rng.vec(size_t(T * stride))), vn = stored<S>(rng.vec(size_t(T * stride)));
  std::vector<float> k_ref = k0, v_ref = v0;
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < row; c++) {
      k_ref[size_t((pos + t) * row + c)] = stored<D>({kn[size_t(t * stride + c)]})[0];
      v_ref[size_t((pos + t) * row + c)] = stored<D>({vn[size_t(t * stride + c)]})[0];
    }
  DeviceBuffer<D> d_k(to_storage<D>(k0)), d_v(to_storage<D>(v0));
  DeviceBuffer<S> d_kn(to_storage<S>(kn)), d_vn(to_storage<S>(vn));
  cuda::kv_append(d_k.get(), d_v.get(), d_kn.get(), d_vn.get(), pos, T, row, stride, stride, cap);
  const std::string tag = std::string("cuda kv_append ") + storage_name<S>() + "->" + storage_name<D>() +
                          " pos=" + std::to_string(pos) + " T=" + std::to_string(T) + " row=" + std::to_string(row);
  check_true(tag + ": new rows in place, the rest untouched",
             to_float(d_k.download()) == k_ref && to_float(d_v.download()) == v_ref);
  if constexpr (std::is_same_v<D, bf16> && std::is_same_v<S, bf16>) {  // kv_append_at: the row read on the device
    DeviceBuffer<D> a_k(to_storage<D>(k0)), a_v(to_storage<D>(v0));
    DeviceBuffer<int32_t> d_pos(std::vector<int32_t>{int32_t(pos)});
    cuda::kv_append_at(a_k.get(), a_v.get(), d_kn.get(), d_vn.get(), d_pos.get(), T, row, stride, stride);
    check_true(tag + ": kv_append_at with the position in device memory, the same",
               to_float(a_k.download()) == k_ref && to_float(a_v.download()) == v_ref);
  }
}

// The CPU generate loop: penalty over seen ids, then a sequential argmax keeping the first strictly larger score.
int32_t cpu_greedy(const float* logits, const uint8_t* seen, int64_t V, float p) {
  std::vector<float> s(logits, logits + V);
  if (p != 1.0f && seen)
    for (int64_t i = 0; i < V; i++)
      if (seen[i]) s[size_t(i)] = s[size_t(i)] < 0 ? s[size_t(i)] * p : s[size_t(i)] / p;
  int32_t nxt = 0;
  for (int64_t i = 1; i < V; i++)
    if (s[size_t(i)] > s[size_t(nxt)]) nxt = int32_t(i);
  return nxt;
}

template <class S>
void greedy_case(int64_t V, float penalty, uint64_t seed) {
  Rng rng(seed);
  const int64_t N = 7;
  auto logits = rng.vec(size_t(N * V), -4, 4);
  std::vector<uint8_t> seen(static_cast<size_t>(N * V));
  for (auto& b : seen) b = rng.uniform(0, 1) < 0.2;
  // row 1: the same maximum at three ids, one of them seen (a penalty can break the tie)
  for (int64_t i : {V / 3, V / 2, V - 1}) logits[size_t(V + i)] = 9.0f;
  // row 2: the best raw logit is seen and positive (a penalty of 1.3 demotes it below 4, 1.05 does not);
  // row 3: all negative, the best (id 0, tied with 17, 34, ...) seen: the penalty moves the choice to id 17
  logits[size_t(2 * V + 11)] = 4.3f;
  seen[size_t(2 * V + 11)] = 1;
  for (int64_t i = 0; i < V; i++) logits[size_t(3 * V + i)] = -1.0f - float(i % 17) * 0.25f;
  seen[size_t(3 * V)] = 1;
  seen[size_t(3 * V + 17)] = 0;
  // row 4: NaN at id 0 (the CPU keeps id 0); row 5: NaNs elsewhere and -inf; row 6: all -inf (id 0)
  logits[size_t(4 * V)] = NAN;
  logits[size_t(5 * V + 3)] = NAN;
  logits[size_t(5 * V + 4)] = -INFINITY;
  for (int64_t i = 0; i < V; i++) logits[size_t(6 * V + i)] = -INFINITY;
  logits = stored<S>(logits);  // bf16 rounding also creates ties

  std::vector<int32_t> want(static_cast<size_t>(N));
  std::vector<uint8_t> seen_after = seen;
  for (int64_t n = 0; n < N; n++) {
    want[size_t(n)] = cpu_greedy(&logits[size_t(n * V)], &seen[size_t(n * V)], V, penalty);
    seen_after[size_t(n * V + want[size_t(n)])] = 1;
  }
  DeviceBuffer<S> d_logits(to_storage<S>(logits));
  DeviceBuffer<uint8_t> d_seen(seen);
  DeviceBuffer<int32_t> d_next(static_cast<size_t>(N)), d_next_plain(static_cast<size_t>(N));
  cuda::greedy_next_token(d_next.get(), d_seen.get(), d_logits.get(), N, V, penalty, true);
  cuda::greedy_next_token(d_next_plain.get(), nullptr, d_logits.get(), N, V, penalty, false);
  std::vector<int32_t> want_plain(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; n++) want_plain[size_t(n)] = cpu_greedy(&logits[size_t(n * V)], nullptr, V, penalty);
  const std::string tag = std::string("cuda greedy_next_token ") + storage_name<S>() + " V=" + std::to_string(V) +
                          " penalty=" + std::to_string(penalty);
  const auto got = d_next.download();
  std::string ids;
  for (int32_t i : got) ids += " " + std::to_string(i);
  check_true(tag + ": the CPU loop's ids (" + ids + " )", got == want);
  check_true(tag + ": seen updated with the chosen ids", d_seen.download() == seen_after);
  check_true(tag + ": without a seen mask, the plain argmax", d_next_plain.download() == want_plain);
}

}  // namespace

VR_TEST(cuda_gelu) {
  gelu_case<float>(5000, 61);
  gelu_case<bf16>(3001, 62);
}

VR_TEST(cuda_kv_append) {
  kv_case<float, float>(40, 0, 7, 96, 96, 71);
  kv_case<float, float>(40, 13, 27, 64, 3 * 64, 72);  // strided rows from a fused QKV output, cache filled to the end
  kv_case<bf16, bf16>(33, 5, 9, 80, 80, 73);
  kv_case<bf16, float>(33, 32, 1, 80, 160, 74);  // one decode step into the last row, rounded to bf16
  bool threw = false;
  try {
    DeviceBuffer<float> k(10), v(10);
    cuda::kv_append(k.get(), v.get(), k.get(), v.get(), 4, 2, 2, 2, 2, 5);
  } catch (const vr::Error& e) {
    threw = std::string(e.what()).find("capacity") != std::string::npos;
  }
  check_true("cuda kv_append past the capacity throws a one-line vr::Error", threw);
}

VR_TEST(cuda_greedy) {
  greedy_case<float>(3001, 1.3f, 81);
  greedy_case<float>(700, 1.0f, 82);
  greedy_case<bf16>(5000, 1.05f, 83);
}

}  // namespace vr::test
