// RMSNorm / LayerNorm over rows, fp32. Row statistics are summed in fp32 with vector partial sums (as
// torch does); parameter gradients are summed per thread and then reduced, so no atomics are needed.
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "cpu/cpu_ops.h"
#include "cpu/simd.h"
#include "cpu/threads.h"

namespace vr::cpu {

namespace {

VR_CLONES void rmsnorm_rows(float* out, float* rstd, const float* inp, const float* w, int64_t N, int64_t C,
                            float eps) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    float* y = out + n * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += x[c] * x[c];
    const float r = 1.0f / std::sqrt(ss / float(C) + eps);
#pragma omp simd
    for (int64_t c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
    if (rstd) rstd[n] = r;
  }
}

// rmsnorm_rows with the output rounded to bf16 (RNE) in the same pass, for a BF16-weight GEMM: the same fp32
// arithmetic, so the bits equal round_to_bf16(rmsnorm_rows(...)).
VR_CLONES void rmsnorm_rows_bf16(uint16_t* out16, const float* inp, const float* w, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    uint16_t* y = out16 + n * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++) ss += x[c] * x[c];
    const float r = 1.0f / std::sqrt(ss / float(C) + eps);
#pragma omp simd
    for (int64_t c = 0; c < C; c++) y[c] = f32_to_bf16(w[c] * (x[c] * r));
  }
}

VR_CLONES void layernorm_rows(float* out, float* mean, float* rstd, const float* inp, const float* w,
                              const float* b, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    float* y = out + n * C;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++) s += x[c];
    const float m = s / float(C);
    float v = 0.f;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
    const float r = 1.0f / std::sqrt(v / float(C) + eps);
    if (b) {
#pragma omp simd
      for (int64_t c = 0; c < C; c++) y[c] = (x[c] - m) * r * w[c] + b[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; c++) y[c] = (x[c] - m) * r * w[c];
    }
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = r;
  }
}

// Per-thread partial sums of parameter gradients, reduced into the destinations (+=) at the end.
struct ParamGradPartials {
  int64_t C;
  int nthreads;
  std::vector<float> buf;
  ParamGradPartials(int64_t C_, int nbuf) : C(C_), nthreads(num_threads()), buf(size_t(nthreads) * nbuf * C_, 0.f) {}
  float* slot(int tid, int which, int nbuf) { return buf.data() + (size_t(tid) * nbuf + which) * C; }
};

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
  rmsnorm_rows(out, rstd, inp, weight, N, C, eps);
}

void rmsnorm_forward_bf16(uint16_t* out16, const float* inp, const float* weight, int64_t N, int64_t C, float eps) {
  rmsnorm_rows_bf16(out16, inp, weight, N, C, eps);
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  layernorm_rows(out, mean, rstd, inp, weight, bias, N, C, eps);
}

// y = w * x * r, r = (mean(x^2) + eps)^-1/2:
//   dx = r * (w*dy) - r^3/C * x * sum(w*dy*x),   dw += dy * x * r
VR_CLONES static void rmsnorm_bwd_rows(float* dinp, ParamGradPartials* pg, const float* dout, const float* inp,
                                       const float* w, const float* rstd, int64_t N, int64_t C) {
#pragma omp parallel num_threads(pg ? pg->nthreads : num_threads())
  {
    const int tid = thread_id();
    float* dw = pg ? pg->slot(tid, 0, 1) : nullptr;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; n++) {
      const float* x = inp + n * C;
      const float* dy = dout + n * C;
      const float r = rstd[n];
      if (dinp) {
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < C; c++) dot += w[c] * dy[c] * x[c];
        const float k = dot * r * r * r / float(C);
        float* dx = dinp + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) dx[c] += r * w[c] * dy[c] - k * x[c];
      }
      if (dw) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) dw[c] += dy[c] * x[c] * r;
      }
    }
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  if (!dweight) {
    rmsnorm_bwd_rows(dinp, nullptr, dout, inp, weight, rstd, N, C);
    return;
  }
  ParamGradPartials pg(C, 1);
  rmsnorm_bwd_rows(dinp, &pg, dout, inp, weight, rstd, N, C);
  for (int t = 0; t < pg.nthreads; t++) {
    const float* s = pg.slot(t, 0, 1);
    for (int64_t c = 0; c < C; c++) dweight[c] += s[c];
  }
}

// y = xhat * w + b, xhat = (x - m) r:
//   dxhat = dy * w;  dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat));  dw += dy xhat; db += dy
VR_CLONES static void layernorm_bwd_rows(float* dinp, ParamGradPartials* pg, const float* dout, const float* inp,
                                         const float* w, const float* mean, const float* rstd, int64_t N,
                                         int64_t C) {
#pragma omp parallel num_threads(pg ? pg->nthreads : num_threads())
  {
    const int tid = thread_id();
    float* dw = pg ? pg->slot(tid, 0, 2) : nullptr;
    float* db = pg ? pg->slot(tid, 1, 2) : nullptr;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; n++) {
      const float* x = inp + n * C;
      const float* dy = dout + n * C;
      const float m = mean[n], r = rstd[n];
      if (dinp) {
        float s1 = 0.f, s2 = 0.f;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t c = 0; c < C; c++) {
          const float g = dy[c] * w[c];
          s1 += g;
          s2 += g * (x[c] - m) * r;
        }
        s1 /= float(C);
        s2 /= float(C);
        float* dx = dinp + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) dx[c] += r * (dy[c] * w[c] - s1 - (x[c] - m) * r * s2);
      }
      if (dw) {
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
          dw[c] += dy[c] * (x[c] - m) * r;
          db[c] += dy[c];
        }
      }
    }
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  if (!dweight && !dbias) {
    layernorm_bwd_rows(dinp, nullptr, dout, inp, weight, mean, rstd, N, C);
    return;
  }
  ParamGradPartials pg(C, 2);
  layernorm_bwd_rows(dinp, &pg, dout, inp, weight, mean, rstd, N, C);
  for (int t = 0; t < pg.nthreads; t++) {
    const float* sw = pg.slot(t, 0, 2);
    const float* sb = pg.slot(t, 1, 2);
    if (dweight) for (int64_t c = 0; c < C; c++) dweight[c] += sw[c];
    if (dbias) for (int64_t c = 0; c < C; c++) dbias[c] += sb[c];
  }
}

}  // namespace vr::cpu
