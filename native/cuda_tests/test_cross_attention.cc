// CUDA BCM/DAC cross-attention core (forward: out, lse, head-averaged probabilities; backward: dq, dk, dv
// accumulated, including the gradient through the averaged probabilities) vs fp64 references by the
// flash-attention rule. The CPU backend's resampler (native/model/bcm.*) fuses projections and LayerNorm around
// this core, so the same-precision baseline here is the naive fp32 instance of the reference below. The fp64
// reference backward is itself checked against central finite differences.
#include <cmath>
#include <limits>
#include <string>

#include "cuda_tests/device_buffer.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

struct XShape {
  int L, Nq, N, H, D;
  double scale;
  std::vector<uint8_t> pad;  // [L, N], 1 = padding
  int64_t W() const { return int64_t(H) * D; }
};

// Dense layouts: q/out/dout [L, Nq, W], k/v [L, N, W], lse [L, H, Nq], probs [L, Nq, N].
template <class T>
void xattn_ref(std::vector<T>& out, std::vector<T>& lse, std::vector<T>& probs, const std::vector<T>& q,
               const std::vector<T>& k, const std::vector<T>& v, const XShape& s) {
  const int64_t W = s.W();
  out.assign(size_t(s.L * s.Nq * W), T(0));
  lse.assign(size_t(s.L * s.H * s.Nq), -std::numeric_limits<T>::infinity());
  probs.assign(size_t(s.L * s.Nq * s.N), T(0));
  for (int l = 0; l < s.L; l++)
    for (int h = 0; h < s.H; h++)
      for (int i = 0; i < s.Nq; i++) {
        const T* qi = &q[size_t((l * s.Nq + i) * W + h * s.D)];
        std::vector<T> sc(size_t(s.N), -std::numeric_limits<T>::infinity());
        T mx = -std::numeric_limits<T>::infinity();
        for (int j = 0; j < s.N; j++) {
          if (s.pad[size_t(l * s.N + j)]) continue;
          T d = 0;
          for (int c = 0; c < s.D; c++) d += qi[c] * k[size_t((int64_t(l) * s.N + j) * W + h * s.D + c)];
          sc[size_t(j)] = d * T(s.scale);
          mx = std::max(mx, sc[size_t(j)]);
        }
        if (mx == -std::numeric_limits<T>::infinity()) continue;
        T sum = 0;
        for (int j = 0; j < s.N; j++)
          if (!s.pad[size_t(l * s.N + j)]) sum += std::exp(sc[size_t(j)] - mx);
        lse[size_t((l * s.H + h) * s.Nq + i)] = mx + std::log(sum);
        T* o = &out[size_t((l * s.Nq + i) * W + h * s.D)];
        for (int j = 0; j < s.N; j++) {
          if (s.pad[size_t(l * s.N + j)]) continue;
          const T p = std::exp(sc[size_t(j)] - mx) / sum;
          probs[size_t((l * s.Nq + i) * s.N + j)] += p / T(s.H);
          for (int c = 0; c < s.D; c++) o[c] += p * v[size_t((int64_t(l) * s.N + j) * W + h * s.D + c)];
        }
      }
}

// Gradients of sum(dout * out) + sum(dA * probs), accumulated into dq, dk, dv.
template <class T>
void xattn_ref_backward(std::vector<T>& dq, std::vector<T>& dk, std::vector<T>& dv, const std::vector<T>& dout,
                        const std::vector<T>* dA, const std::vector<T>& q, const std::vector<T>& k,
                        const std::vector<T>& v, const XShape& s) {
  const int64_t W = s.W();
  for (int l = 0; l < s.L; l++)
    for (int h = 0; h < s.H; h++)
      for (int i = 0; i < s.Nq; i++) {
        const size_t qrow = size_t((l * s.Nq + i) * W + h * s.D);
        auto krow = [&](int j) { return size_t((int64_t(l) * s.N + j) * W + h * s.D); };
        std::vector<T> p(size_t(s.N), T(0)), dp(size_t(s.N), T(0));
        T mx = -std::numeric_limits<T>::infinity();
        for (int j = 0; j < s.N; j++) {
          if (s.pad[size_t(l * s.N + j)]) continue;
          T d = 0;
          for (int c = 0; c < s.D; c++) d += q[qrow + c] * k[krow(j) + c];
          p[size_t(j)] = d * T(s.scale);
          mx = std::max(mx, p[size_t(j)]);
        }
        if (mx == -std::numeric_limits<T>::infinity()) continue;
        T sum = 0;
        for (int j = 0; j < s.N; j++)
          if (!s.pad[size_t(l * s.N + j)]) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
        T delta = 0;
        for (int j = 0; j < s.N; j++) {
          if (s.pad[size_t(l * s.N + j)]) continue;
          p[size_t(j)] /= sum;
          T d = 0;
          for (int c = 0; c < s.D; c++) d += dout[qrow + c] * v[krow(j) + c];
          if (dA) d += (*dA)[size_t((l * s.Nq + i) * s.N + j)] / T(s.H);
          dp[size_t(j)] = d;
          delta += p[size_t(j)] * d;
        }
        for (int j = 0; j < s.N; j++) {
          if (s.pad[size_t(l * s.N + j)]) continue;
          const T ds = p[size_t(j)] * (dp[size_t(j)] - delta) * T(s.scale);
          for (int c = 0; c < s.D; c++) {
            dq[qrow + c] += ds * k[krow(j) + c];
            dk[krow(j) + c] += ds * q[qrow + c];
            dv[krow(j) + c] += p[size_t(j)] * dout[qrow + c];
          }
        }
      }
}

// The fp64 backward reference against finite differences of the fp64 forward (tiny shape, padding included).
void check_reference_gradients() {
  XShape s{2, 3, 5, 2, 3, 0.7, {0, 0, 1, 0, 0, 0, 1, 0, 0, 1}};
  Rng rng(99);
  const auto q = to_double(rng.vec(size_t(s.L * s.Nq * s.W()))), k = to_double(rng.vec(size_t(s.L * s.N * s.W())));
  const auto v = to_double(rng.vec(size_t(s.L * s.N * s.W()))), dout = to_double(rng.vec(q.size()));
  const auto dA = to_double(rng.vec(size_t(s.L * s.Nq * s.N)));
  std::vector<double> dq(q.size(), 0.0), dk(k.size(), 0.0), dv(v.size(), 0.0);
  xattn_ref_backward(dq, dk, dv, dout, &dA, q, k, v, s);
  // loss(x) = sum(dout * out) + sum(dA * probs): the weights are dout ++ dA over the concatenated outputs
  std::vector<double> w = dout;
  w.insert(w.end(), dA.begin(), dA.end());
  auto outputs = [&](const std::vector<double>& qq, const std::vector<double>& kk, const std::vector<double>& vv) {
    std::vector<double> out, lse, probs;
    xattn_ref(out, lse, probs, qq, kk, vv, s);
    out.insert(out.end(), probs.begin(), probs.end());
    return out;
  };
  const auto uq = to_double(rng.vec(q.size())), uk = to_double(rng.vec(k.size())), uv = to_double(rng.vec(v.size()));
  check_fd("cross-attention fp64 reference dq vs finite differences",
           fd_directional([&](const std::vector<double>& x) { return outputs(x, k, v); }, q, uq, w), dot(dq, uq));
  check_fd("cross-attention fp64 reference dk vs finite differences",
           fd_directional([&](const std::vector<double>& x) { return outputs(q, x, v); }, k, uk, w), dot(dk, uk));
  check_fd("cross-attention fp64 reference dv vs finite differences",
           fd_directional([&](const std::vector<double>& x) { return outputs(q, k, x); }, v, uv, w), dot(dv, uv));
}

// Interleaves k and v rows into one [L*N, 2W] buffer (as one fused K|V projection writes them).
template <class S>
std::vector<S> fuse_kv(const std::vector<S>& k, const std::vector<S>& v, int64_t rows, int64_t W) {
  std::vector<S> r(size_t(rows * 2 * W));
  for (int64_t t = 0; t < rows; t++)
    for (int64_t c = 0; c < W; c++) {
      r[size_t(t * 2 * W + c)] = k[size_t(t * W + c)];
      r[size_t(t * 2 * W + W + c)] = v[size_t(t * W + c)];
    }
  return r;
}
void split_kv(const std::vector<float>& kv, std::vector<float>& k, std::vector<float>& v, int64_t rows, int64_t W) {
  k.resize(size_t(rows * W));
  v.resize(size_t(rows * W));
  for (int64_t t = 0; t < rows; t++)
    for (int64_t c = 0; c < W; c++) {
      k[size_t(t * W + c)] = kv[size_t(t * 2 * W + c)];
      v[size_t(t * W + c)] = kv[size_t(t * 2 * W + W + c)];
    }
}

void check_lse(const std::string& what, std::vector<float> got, std::vector<float> base, std::vector<double> ref) {
  bool same = true;
  for (size_t i = 0; i < ref.size(); i++) {
    const bool none = std::isinf(ref[i]);
    same &= std::isinf(got[i]) == none && std::isinf(base[i]) == none;
    if (none) got[i] = base[i] = 0.f, ref[i] = 0.0;
  }
  check_true(what + " -inf for items with every key padded", same);
  check_rule(what, got.data(), base.data(), ref.data(), ref.size(), 1e-6);
}

template <class S>
void xattn_case(const char* name, XShape s, bool with_dA, uint64_t seed) {
  Rng rng(seed);
  const int64_t W = s.W(), QR = int64_t(s.L) * s.Nq, KR = int64_t(s.L) * s.N;
  const auto q = stored<S>(rng.vec(size_t(QR * W), -1, 1)), k = stored<S>(rng.vec(size_t(KR * W), -1, 1));
  const auto v = stored<S>(rng.vec(size_t(KR * W))), dout = stored<S>(rng.vec(size_t(QR * W)));
  const auto dA = rng.vec(size_t(QR * s.N), -3, 3);
  const auto dq0 = stored<S>(rng.vec(size_t(QR * W))), dk0 = stored<S>(rng.vec(size_t(KR * W)));
  const auto dv0 = stored<S>(rng.vec(size_t(KR * W)));
  const std::string tag = std::string("cuda cross_attention ") + storage_name<S>() + " " + name;

  std::vector<double> out64, lse64, pr64, dq64 = to_double(dq0), dk64 = to_double(dk0), dv64 = to_double(dv0);
  const std::vector<double> dA64 = to_double(dA);
  xattn_ref(out64, lse64, pr64, to_double(q), to_double(k), to_double(v), s);
  xattn_ref_backward(dq64, dk64, dv64, to_double(dout), with_dA ? &dA64 : nullptr, to_double(q), to_double(k),
                     to_double(v), s);
  std::vector<float> out32, lse32, pr32, dq32 = dq0, dk32 = dk0, dv32 = dv0;
  xattn_ref(out32, lse32, pr32, q, k, v, s);
  xattn_ref_backward(dq32, dk32, dv32, dout, with_dA ? &dA : nullptr, q, k, v, s);
  out32 = stored<S>(out32);
  dq32 = stored<S>(dq32);
  dk32 = stored<S>(dk32);
  dv32 = stored<S>(dv32);

  // k and v live interleaved in one buffer (row stride 2W), as a fused projection would write them.
  DeviceBuffer<S> d_q(to_storage<S>(q)), d_kv(fuse_kv(to_storage<S>(k), to_storage<S>(v), KR, W));
  DeviceBuffer<S> d_dkv(fuse_kv(to_storage<S>(dk0), to_storage<S>(dv0), KR, W));
  DeviceBuffer<S> d_out(static_cast<size_t>(QR * W)), d_dout(to_storage<S>(dout)), d_dq(to_storage<S>(dq0));
  DeviceBuffer<float> d_lse(static_cast<size_t>(s.L * s.H * s.Nq)), d_pr(static_cast<size_t>(QR * s.N)), d_dA(dA);
  DeviceBuffer<uint8_t> d_pad(s.pad);
  cuda::CrossAttnArgs a;
  a.L = s.L;
  a.Nq = s.Nq;
  a.N = s.N;
  a.H = s.H;
  a.D = s.D;
  a.scale = float(s.scale);
  a.q_stride = W;
  a.k_stride = a.v_stride = 2 * W;
  S* kp = d_kv.get();
  S* dkp = d_dkv.get();
  cuda::cross_attention_forward(d_out.get(), d_lse.get(), d_pr.get(), d_q.get(), kp, kp + W, d_pad.get(), a);
  cuda::cross_attention_backward(d_dq.get(), dkp, dkp + W, d_dout.get(), with_dA ? d_dA.get() : nullptr, d_out.get(),
                                 d_lse.get(), d_q.get(), kp, kp + W, d_pad.get(), a);
  const auto out = to_float(d_out.download()), lse = d_lse.download(), pr = d_pr.download();
  const auto dq = to_float(d_dq.download());
  std::vector<float> dk, dv;
  split_kv(to_float(d_dkv.download()), dk, dv, KR, W);

  check_rule(tag + " out", out.data(), out32.data(), out64.data(), out.size(), 1e-6);
  check_lse(tag + " lse", lse, lse32, lse64);
  check_rule(tag + " head-averaged probs", pr.data(), pr32.data(), pr64.data(), pr.size(), 1e-7);
  check_rule(tag + " dq", dq.data(), dq32.data(), dq64.data(), dq.size(), 1e-6);
  check_rule(tag + " dk", dk.data(), dk32.data(), dk64.data(), dk.size(), 1e-6);
  check_rule(tag + " dv", dv.data(), dv32.data(), dv64.data(), dv.size(), 1e-6);
}

// Padding patterns: item 0 none, item 1 a padded tail, item 2 holes, item 3 (if any) all padded.
std::vector<uint8_t> padding(int L, int N) {
  std::vector<uint8_t> pad(size_t(L * N), 0);
  for (int j = 0; j < N; j++) {
    if (L > 1 && j >= N - N / 3) pad[size_t(N + j)] = 1;
    if (L > 2 && j % 5 == 3) pad[size_t(2 * N + j)] = 1;
    if (L > 3) pad[size_t(3 * N + j)] = 1;
  }
  return pad;
}

}  // namespace

VR_TEST(cuda_cross_attention) {
  check_reference_gradients();
  // BCM/DAC shape: 8 queries, 8 heads of 448
  xattn_case<float>("Nq=8 H=8 D=448 N=37, 4 items (one all padding), with dA", {4, 8, 37, 8, 448, 1 / std::sqrt(448.0),
                                                                                padding(4, 37)},
                    true, 1);
  xattn_case<float>("Nq=12 H=3 D=64 N=50, no dA", {3, 12, 50, 3, 64, 0.125, padding(3, 50)}, false, 2);
  xattn_case<bf16>("Nq=8 H=2 D=448 N=20, with dA", {3, 8, 20, 2, 448, 1 / std::sqrt(448.0), padding(3, 20)}, true, 3);
  expect_throw("cuda cross_attention_forward Nq=17", [] {
    cuda::CrossAttnArgs a;
    a.L = 1;
    a.Nq = 17;
    a.N = 4;
    a.H = 1;
    a.D = 8;
    a.q_stride = a.k_stride = a.v_stride = 8;
    cuda::cross_attention_forward(static_cast<float*>(nullptr), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                  a);
  });
}

}  // namespace vr::test
