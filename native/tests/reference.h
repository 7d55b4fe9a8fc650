// Naive reference implementations, templated on the arithmetic type: T = double is the fp64 reference,
// T = float the same-precision naive baseline of the tolerance rule. Straight loops, no blocking, no tricks.
// Layouts follow native/ops/*.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "ops/attention.h"

namespace vr::test::ref {

template <class T>
using Vec = std::vector<T>;

// out[m,n] = (acc ? out : 0) + sum_k x[m,k] w[n,k] + b[n]
template <class T>
void linear(Vec<T>& out, const Vec<T>& x, const Vec<T>& w, const Vec<T>* b, int64_t M, int64_t N, int64_t K,
            bool acc) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      T s = 0;
      for (int64_t k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      if (b) s += (*b)[n];
      out[m * N + n] = acc ? out[m * N + n] + s : s;
    }
}

// dx[M,K] += dy @ W; dw[N,K] += dy^T @ x; db[N] += sum dy
template <class T>
void linear_backward(Vec<T>& dx, Vec<T>& dw, Vec<T>& db, const Vec<T>& dy, const Vec<T>& x, const Vec<T>& w,
                     int64_t M, int64_t N, int64_t K) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t k = 0; k < K; k++) {
      T s = 0;
      for (int64_t n = 0; n < N; n++) s += dy[m * N + n] * w[n * K + k];
      dx[m * K + k] += s;
    }
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < K; k++) {
      T s = 0;
      for (int64_t m = 0; m < M; m++) s += dy[m * N + n] * x[m * K + k];
      dw[n * K + k] += s;
    }
  for (int64_t n = 0; n < N; n++) {
    T s = 0;
    for (int64_t m = 0; m < M; m++) s += dy[m * N + n];
    db[n] += s;
  }
}

struct AttnShape {
  int Hq, Hkv, D;
  double scale;
  bool causal;
  std::vector<int32_t> cu_q, cu_k;
  int64_t Tq() const { return cu_q.back(); }
  int64_t Tk() const { return cu_k.back(); }
};

// Is key j (segment-relative) visible to query i? Bottom-right aligned causal mask.
inline bool visible(const AttnShape& a, int64_t i, int64_t j, int64_t Lq, int64_t Lk) {
  return !a.causal || j <= i + (Lk - Lq);
}

// Full softmax attention on dense [T, H, D] buffers. lse[h*Tq + t]; rows that see no key: out 0, lse -inf.
// round_p: the probabilities multiplying v are rounded to bf16 (their sum is not), as bf16 attention does.
template <class T>
void attention(Vec<T>& out, Vec<T>& lse, const Vec<T>& q, const Vec<T>& k, const Vec<T>& v, const AttnShape& a,
               bool round_p = false) {
  const int D = a.D, G = a.Hq / a.Hkv;
  const int64_t Tq = a.Tq();
  for (size_t s = 0; s + 1 < a.cu_q.size(); s++) {
    const int64_t q0 = a.cu_q[s], k0 = a.cu_k[s], Lq = a.cu_q[s + 1] - q0, Lk = a.cu_k[s + 1] - k0;
    for (int h = 0; h < a.Hq; h++) {
      const int g = h / G;
      for (int64_t i = 0; i < Lq; i++) {
        Vec<T> sc(static_cast<size_t>(Lk));
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < Lk; j++) {
          if (!visible(a, i, j, Lq, Lk)) continue;
          T d = 0;
          for (int c = 0; c < D; c++) d += q[((q0 + i) * a.Hq + h) * D + c] * k[((k0 + j) * a.Hkv + g) * D + c];
          sc[size_t(j)] = d * T(a.scale);
          mx = std::max(mx, sc[size_t(j)]);
        }
        T* o = &out[size_t(((q0 + i) * a.Hq + h) * D)];
        for (int c = 0; c < D; c++) o[c] = 0;
        if (mx == -std::numeric_limits<T>::infinity()) {
          lse[size_t(h * Tq + q0 + i)] = mx;
          continue;
        }
        T sum = 0;
        for (int64_t j = 0; j < Lk; j++) {
          if (!visible(a, i, j, Lq, Lk)) continue;
          const T p = std::exp(sc[size_t(j)] - mx);
          sum += p;
          const T pv = round_p ? T(bf16_to_f32(f32_to_bf16(float(p)))) : p;
          for (int c = 0; c < D; c++) o[c] += pv * v[((k0 + j) * a.Hkv + g) * D + c];
        }
        for (int c = 0; c < D; c++) o[c] /= sum;
        lse[size_t(h * Tq + q0 + i)] = mx + std::log(sum);
      }
    }
  }
}

// Gradients of sum(dout * attention(q, k, v)) from the full probability matrix (accumulated into dq/dk/dv).
template <class T>
void attention_backward(Vec<T>& dq, Vec<T>& dk, Vec<T>& dv, const Vec<T>& dout, const Vec<T>& q, const Vec<T>& k,
                        const Vec<T>& v, const AttnShape& a) {
  const int D = a.D, G = a.Hq / a.Hkv;
  for (size_t s = 0; s + 1 < a.cu_q.size(); s++) {
    const int64_t q0 = a.cu_q[s], k0 = a.cu_k[s], Lq = a.cu_q[s + 1] - q0, Lk = a.cu_k[s + 1] - k0;
    for (int h = 0; h < a.Hq; h++) {
      const int g = h / G;
      for (int64_t i = 0; i < Lq; i++) {
        const T* qi = &q[size_t(((q0 + i) * a.Hq + h) * D)];
        const T* gi = &dout[size_t(((q0 + i) * a.Hq + h) * D)];
        Vec<T> p(static_cast<size_t>(Lk), T(0)), dp(static_cast<size_t>(Lk), T(0));
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < Lk; j++) {
          if (!visible(a, i, j, Lq, Lk)) continue;
          T d = 0;
          for (int c = 0; c < D; c++) d += qi[c] * k[size_t(((k0 + j) * a.Hkv + g) * D + c)];
          p[size_t(j)] = d * T(a.scale);
          mx = std::max(mx, p[size_t(j)]);
        }
        if (mx == -std::numeric_limits<T>::infinity()) continue;
        T sum = 0;
        for (int64_t j = 0; j < Lk; j++)
          if (visible(a, i, j, Lq, Lk)) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
        T dsum = 0;
        for (int64_t j = 0; j < Lk; j++) {
          if (!visible(a, i, j, Lq, Lk)) continue;
          p[size_t(j)] /= sum;
          T d = 0;
          for (int c = 0; c < D; c++) d += gi[c] * v[size_t(((k0 + j) * a.Hkv + g) * D + c)];
          dp[size_t(j)] = d;
          dsum += p[size_t(j)] * d;
        }
        for (int64_t j = 0; j < Lk; j++) {
          if (!visible(a, i, j, Lq, Lk)) continue;
          const T ds = p[size_t(j)] * (dp[size_t(j)] - dsum) * T(a.scale);
          const size_t kj = size_t(((k0 + j) * a.Hkv + g) * D);
          for (int c = 0; c < D; c++) {
            dq[size_t(((q0 + i) * a.Hq + h) * D + c)] += ds * k[kj + c];
            dk[kj + c] += ds * qi[c];
            dv[kj + c] += p[size_t(j)] * gi[c];
          }
        }
      }
    }
  }
}

template <class T>
void rmsnorm(Vec<T>& out, Vec<T>& rstd, const Vec<T>& x, const Vec<T>& w, int64_t N, int64_t C, double eps) {
  for (int64_t n = 0; n < N; n++) {
    T ss = 0;
    for (int64_t c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const T r = T(1) / std::sqrt(ss / T(C) + T(eps));
    for (int64_t c = 0; c < C; c++) out[n * C + c] = w[c] * (x[n * C + c] * r);
    rstd[n] = r;
  }
}

template <class T>
void rmsnorm_backward(Vec<T>& dx, Vec<T>& dw, const Vec<T>& dy, const Vec<T>& x, const Vec<T>& w, int64_t N,
                      int64_t C, double eps) {
  for (int64_t n = 0; n < N; n++) {
    T ss = 0;
    for (int64_t c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const T r = T(1) / std::sqrt(ss / T(C) + T(eps));
    T dot = 0;
    for (int64_t c = 0; c < C; c++) dot += dy[n * C + c] * w[c] * x[n * C + c];
    for (int64_t c = 0; c < C; c++) {
      dx[n * C + c] += r * w[c] * dy[n * C + c] - r * r * r * dot / T(C) * x[n * C + c];
      dw[c] += dy[n * C + c] * x[n * C + c] * r;
    }
  }
}

template <class T>
void layernorm(Vec<T>& out, Vec<T>& mean, Vec<T>& rstd, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b,
               int64_t N, int64_t C, double eps) {
  for (int64_t n = 0; n < N; n++) {
    T s = 0;
    for (int64_t c = 0; c < C; c++) s += x[n * C + c];
    const T m = s / T(C);
    T var = 0;
    for (int64_t c = 0; c < C; c++) var += (x[n * C + c] - m) * (x[n * C + c] - m);
    const T r = T(1) / std::sqrt(var / T(C) + T(eps));
    for (int64_t c = 0; c < C; c++) out[n * C + c] = (x[n * C + c] - m) * r * w[c] + b[c];
    mean[n] = m;
    rstd[n] = r;
  }
}

template <class T>
void layernorm_backward(Vec<T>& dx, Vec<T>& dw, Vec<T>& db, const Vec<T>& dy, const Vec<T>& x, const Vec<T>& w,
                        int64_t N, int64_t C, double eps) {
  for (int64_t n = 0; n < N; n++) {
    T s = 0;
    for (int64_t c = 0; c < C; c++) s += x[n * C + c];
    const T m = s / T(C);
    T var = 0;
    for (int64_t c = 0; c < C; c++) var += (x[n * C + c] - m) * (x[n * C + c] - m);
    const T r = T(1) / std::sqrt(var / T(C) + T(eps));
    T g1 = 0, g2 = 0;
    for (int64_t c = 0; c < C; c++) {
      const T xh = (x[n * C + c] - m) * r, g = dy[n * C + c] * w[c];
      g1 += g;
      g2 += g * xh;
    }
    g1 /= T(C);
    g2 /= T(C);
    for (int64_t c = 0; c < C; c++) {
      const T xh = (x[n * C + c] - m) * r;
      dx[n * C + c] += r * (dy[n * C + c] * w[c] - g1 - xh * g2);
      dw[c] += dy[n * C + c] * xh;
      db[c] += dy[n * C + c];
    }
  }
}

// Rotate-half RoPE on [T, H, D] rows with row stride `stride`; transpose = the gradient (inverse) rotation.
template <class T>
void rope(Vec<T>& x, const Vec<T>& cs, const Vec<T>& sn, int64_t Tn, int H, int D, int64_t stride, bool transpose) {
  const int h2 = D / 2;
  for (int64_t t = 0; t < Tn; t++)
    for (int h = 0; h < H; h++) {
      T* a = &x[size_t(t * stride + h * D)];
      const T* c = &cs[size_t(t * D)];
      const T* s = &sn[size_t(t * D)];
      for (int i = 0; i < h2; i++) {
        const T x1 = a[i], x2 = a[i + h2];
        if (!transpose) {
          a[i] = x1 * c[i] - x2 * s[i];
          a[i + h2] = x2 * c[i + h2] + x1 * s[i + h2];
        } else {
          a[i] = x1 * c[i] + x2 * s[i + h2];
          a[i + h2] = x2 * c[i + h2] - x1 * s[i];
        }
      }
    }
}

template <class T>
T silu(T z) { return z / (T(1) + std::exp(-z)); }
template <class T>
T gelu_erf(T z) { return T(0.5) * z * (T(1) + std::erf(z / std::sqrt(T(2)))); }
template <class T>
T gelu_erf_grad(T z) {
  return T(0.5) * (T(1) + std::erf(z / std::sqrt(T(2)))) + z * std::exp(-z * z / T(2)) / std::sqrt(T(2) * T(M_PI));
}
template <class T>
void swiglu_grad(T g, T u, T dy, T* dg, T* du) {
  const T s = T(1) / (T(1) + std::exp(-g));
  *dg = dy * u * (s + g * s * (T(1) - s));
  *du = dy * g * s;
}

}  // namespace vr::test::ref
