// Built-in GEMM in dot-product form (both operands have K contiguous, as a Linear weight [N, K] does):
// threads split N into blocks; a block of B rows is widened to fp32 once, then 4x4 tiles of C are computed
// with 16 vector accumulators over K. Slower than oneDNN, but portable and exact in its rounding contract.
#include "cpu/gemm_builtin.h"

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "cpu/simd.h"

namespace vr::cpu {

namespace {

constexpr int64_t kNB = 16;  // rows of B per thread block

#define VR_DOT4x4_VARS                                                                                  \
  float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0, c20 = 0, c21 = 0, c22 = 0, \
        c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0

// Computes the C tile rows [m0, m0+mr) x cols [n0, n0+nr) (mr, nr <= 4) from A rows and fp32 B rows.
VR_CLONES void tile_block(int64_t M, int64_t nr_total, int64_t K, const float* A, int64_t lda, const float* Bf,
                          float* C, int64_t ldc, const float* bias, bool acc) {
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mr = std::min<int64_t>(4, M - m0);
    for (int64_t n0 = 0; n0 < nr_total; n0 += 4) {
      const int64_t nr = std::min<int64_t>(4, nr_total - n0);
      float r[4][4];
      if (mr == 4 && nr == 4) {
        const float *a0 = A + m0 * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        const float *b0 = Bf + n0 * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
        VR_DOT4x4_VARS;
#pragma omp simd reduction(+ : c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33)
        for (int64_t k = 0; k < K; k++) {
          const float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
          const float y0 = b0[k], y1 = b1[k], y2 = b2[k], y3 = b3[k];
          c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
          c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
          c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
          c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
        }
        r[0][0] = c00; r[0][1] = c01; r[0][2] = c02; r[0][3] = c03;
        r[1][0] = c10; r[1][1] = c11; r[1][2] = c12; r[1][3] = c13;
        r[2][0] = c20; r[2][1] = c21; r[2][2] = c22; r[2][3] = c23;
        r[3][0] = c30; r[3][1] = c31; r[3][2] = c32; r[3][3] = c33;
      } else {
        for (int64_t i = 0; i < mr; i++)
          for (int64_t j = 0; j < nr; j++) {
            const float* a = A + (m0 + i) * lda;
            const float* b = Bf + (n0 + j) * K;
            float s = 0.f;
#pragma omp simd reduction(+ : s)
            for (int64_t k = 0; k < K; k++) s += a[k] * b[k];
            r[i][j] = s;
          }
      }
      for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) {
          float* c = C + (m0 + i) * ldc + n0 + j;
          float v = r[i][j] + (bias ? bias[n0 + j] : 0.f);
          *c = acc ? *c + v : v;
        }
    }
  }
}

template <class BT>
void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BT* B, int64_t ldb, float* C,
             int64_t ldc, const float* bias, bool acc) {
  const int64_t nblocks = (N + kNB - 1) / kNB;
#pragma omp parallel
  {
    std::vector<float> wide;
#pragma omp for schedule(dynamic, 1)
    for (int64_t nb = 0; nb < nblocks; nb++) {
      const int64_t n0 = nb * kNB, nr = std::min(kNB, N - n0);
      const float* Bf;
      if constexpr (sizeof(BT) == 4) {
        if (ldb == K) {
          Bf = reinterpret_cast<const float*>(B) + n0 * ldb;
        } else {
          wide.resize(size_t(nr * K));
          for (int64_t j = 0; j < nr; j++)
            std::copy(B + (n0 + j) * ldb, B + (n0 + j) * ldb + K, wide.begin() + j * K);
          Bf = wide.data();
        }
      } else {
        wide.resize(size_t(nr * K));
        for (int64_t j = 0; j < nr; j++) {
          const uint16_t* src = B + (n0 + j) * ldb;
          float* dst = wide.data() + j * K;
          for (int64_t k = 0; k < K; k++) dst[k] = bf16_to_f32(src[k]);
        }
        Bf = wide.data();
      }
      tile_block(M, nr, K, A, lda, Bf, C + n0, ldc, bias ? bias + n0 : nullptr, acc);
    }
  }
}

}  // namespace

void gemm_nt_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float* C, int64_t ldc, const float* bias, bool accumulate) {
  gemm_nt<float>(M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate);
}

void gemm_nt_bf16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* B, int64_t ldb,
                  float* C, int64_t ldc, const float* bias, bool accumulate) {
  gemm_nt<uint16_t>(M, N, K, A, lda, B, ldb, C, ldc, bias, accumulate);
}

}  // namespace vr::cpu
