// AVX-512-BF16 attention tiles (see attention_tiles_bf16.h). Register tiles as in the fp32 tiles: scores 6 query
// rows x 64 keys (24 accumulators), P.V 6 rows x 64 head-dim columns, but each vdpbf16ps does two
// multiply-adds per lane, so a tile needs half the instructions (D/2 or 32 pair steps instead of D or 64).
// Operands are packed once per key block (pack_k / pack_v), rounded with vcvtne2ps2bf16 (RNE).
#include "cpu/attention_tiles_bf16.h"

#include "core/parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// GCC 12 warns inside its own AVX-512 reduce/extract intrinsics (_mm512_undefined_* placeholders): a known
// false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstring>
#include <limits>

#include "cpu/avx512_helpers.h"

#define VR_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))

namespace vr::cpu::bf16attn {

namespace {

using avx512::exp512;
using avx512::transpose16;

// 16 lanes of `left` valid (clamped to 0..16).
inline __mmask16 lanes(int left) {
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// bf16(lo[0..15]) then bf16(hi[0..15]) as 32 bf16 (the low half of vcvtne2ps2bf16's result is its 2nd operand).
VR_AVX512BF16 inline __m512i to_bf16_pairs(__m512 lo, __m512 hi) {
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

VR_AVX512BF16 inline uint32_t load_pair(const uint16_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  return x;
}

// exp(x) for x <= 0 (scores minus their running max; -inf allowed -> 0), accurate to ~3e-6 relative: enough for
// probabilities that are rounded to bf16 (2^-9) for P V and summed in fp32 for l. Cody-Waite with one ln2 term and a
// degree-5 polynomial: 11 instructions per 16 lanes against 15 for exp512.
VR_AVX512BF16 inline __m512 exp_nonpos(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
  x = _mm512_max_ps(x, lo);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.69314718056f), x);
  __m512 p = _mm512_set1_ps(1.f / 120.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

template <int RT>
VR_AVX512BF16 void scores_tile(float* s, const uint16_t* q16, const uint32_t* kt2, int D, float scale) {
  __m512 c[RT][4];
  for (int r = 0; r < RT; r++)
    for (int i = 0; i < 4; i++) c[r][i] = _mm512_setzero_ps();
  for (int dp = 0; dp < D / 2; dp++) {
    const uint32_t* kd = kt2 + dp * kBk;
    const __m512bh k0 = (__m512bh)_mm512_loadu_si512(kd), k1 = (__m512bh)_mm512_loadu_si512(kd + 16),
                   k2 = (__m512bh)_mm512_loadu_si512(kd + 32), k3 = (__m512bh)_mm512_loadu_si512(kd + 48);
    for (int r = 0; r < RT; r++) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int(load_pair(q16 + r * D + 2 * dp)));
      c[r][0] = _mm512_dpbf16_ps(c[r][0], b, k0);
      c[r][1] = _mm512_dpbf16_ps(c[r][1], b, k1);
      c[r][2] = _mm512_dpbf16_ps(c[r][2], b, k2);
      c[r][3] = _mm512_dpbf16_ps(c[r][3], b, k3);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int r = 0; r < RT; r++)
    for (int i = 0; i < 4; i++) _mm512_storeu_ps(s + r * kBk + i * 16, _mm512_mul_ps(c[r][i], sc));
}

// acc[r, c0 : c0 + 16*CW] = acc[r, ...] * alpha[r] + sum_j p16[r, j] v[j, c0 ...] over pairs jp < njp.
template <int RT, int CW>
VR_AVX512BF16 void pv_tile(float* acc, int D, const float* alpha, const uint16_t* p16, const uint32_t* v2, int njp,
                           int c0) {
  __m512 a[RT][CW];
  for (int r = 0; r < RT; r++) {  // alpha 0: the row's first contribution, its acc holds nothing (not read)
    const __m512 al = _mm512_set1_ps(alpha[r]);
    for (int i = 0; i < CW; i++)
      a[r][i] = alpha[r] == 0.f ? _mm512_setzero_ps() : _mm512_mul_ps(_mm512_loadu_ps(acc + r * D + c0 + i * 16), al);
  }
  for (int jp = 0; jp < njp; jp++) {
    const uint32_t* vj = v2 + jp * D + c0;
    __m512bh vv[CW];
    for (int i = 0; i < CW; i++) vv[i] = (__m512bh)_mm512_loadu_si512(vj + i * 16);
    for (int r = 0; r < RT; r++) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int(load_pair(p16 + r * kBk + 2 * jp)));
      for (int i = 0; i < CW; i++) a[r][i] = _mm512_dpbf16_ps(a[r][i], b, vv[i]);
    }
  }
  for (int r = 0; r < RT; r++)
    for (int i = 0; i < CW; i++) _mm512_storeu_ps(acc + r * D + c0 + i * 16, a[r][i]);
}

template <int RT>
VR_AVX512BF16 void pv_rows(float* acc, int D, const float* alpha, const uint16_t* p16, const uint32_t* v2, int njp) {
  int c0 = 0;
  for (; c0 + 64 <= D; c0 += 64) pv_tile<RT, 4>(acc, D, alpha, p16, v2, njp, c0);
  switch ((D - c0) / 16) {
    case 3: pv_tile<RT, 3>(acc, D, alpha, p16, v2, njp, c0); break;
    case 2: pv_tile<RT, 2>(acc, D, alpha, p16, v2, njp, c0); break;
    case 1: pv_tile<RT, 1>(acc, D, alpha, p16, v2, njp, c0); break;
    default: break;
  }
}

VR_AVX512BF16 void pv_block(int rt, float* acc, int D, const float* alpha, const uint16_t* p16, const uint32_t* v2,
                            int njp) {
  switch (rt) {
    case 6: pv_rows<6>(acc, D, alpha, p16, v2, njp); break;
    case 5: pv_rows<5>(acc, D, alpha, p16, v2, njp); break;
    case 4: pv_rows<4>(acc, D, alpha, p16, v2, njp); break;
    case 3: pv_rows<3>(acc, D, alpha, p16, v2, njp); break;
    case 2: pv_rows<2>(acc, D, alpha, p16, v2, njp); break;
    default: pv_rows<1>(acc, D, alpha, p16, v2, njp); break;
  }
}

// D == 80 (the ViT): all 5 column vectors in one pass over the pairs, 4 rows (20 accumulators), instead of a 64-wide
// pass plus a 16-wide one whose broadcasts feed one vdpbf16ps each.
VR_AVX512BF16 void pv_block80(int rt, float* acc, const float* alpha, const uint16_t* p16, const uint32_t* v2, int njp) {
  switch (rt) {
    case 4: pv_tile<4, 5>(acc, 80, alpha, p16, v2, njp, 0); break;
    case 3: pv_tile<3, 5>(acc, 80, alpha, p16, v2, njp, 0); break;
    case 2: pv_tile<2, 5>(acc, 80, alpha, p16, v2, njp, 0); break;
    default: pv_tile<1, 5>(acc, 80, alpha, p16, v2, njp, 0); break;
  }
}

}  // namespace

bool available(int D) {
  static const bool cpu_ok = cpu_features().avx512_bf16;
  return cpu_ok && D > 0 && D % 16 == 0;
}

VR_AVX512BF16 void round_rows(uint16_t* q16, const float* src, int64_t src_stride, int rows, int D) {
  for (int r = 0; r < rows; r++) {
    const float* x = src + r * src_stride;
    uint16_t* y = q16 + r * D;
    int d = 0;
    for (; d + 32 <= D; d += 32)
      _mm512_storeu_si512(y + d, to_bf16_pairs(_mm512_loadu_ps(x + d), _mm512_loadu_ps(x + d + 16)));
    if (d < D)  // D % 16 == 0: one 16-wide half left
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + d),
                          _mm512_castsi512_si256(to_bf16_pairs(_mm512_loadu_ps(x + d), _mm512_setzero_ps())));
  }
}

VR_AVX512BF16 void pack_k(uint32_t* kt2, const float* k, int64_t k_stride, int nk, int D) {
  const int D2 = D / 2;
  for (int j0 = 0; j0 < kBk; j0 += 16) {
    if (j0 >= nk) {  // whole 16-key group hidden: zeros keep its scores finite
      for (int dp = 0; dp < D2; dp++) _mm512_storeu_si512(kt2 + dp * kBk + j0, _mm512_setzero_si512());
      continue;
    }
    for (int dp0 = 0; dp0 < D2; dp0 += 16) {  // 32 head dims = 16 pairs per register
      const int d0 = 2 * dp0;
      const bool hi_ok = d0 + 16 < D;
      __m512 r[16];
      for (int i = 0; i < 16; i++) {
        if (j0 + i < nk) {
          const float* kr = k + (j0 + i) * k_stride + d0;
          const __m512 lo = _mm512_loadu_ps(kr), hi = hi_ok ? _mm512_loadu_ps(kr + 16) : _mm512_setzero_ps();
          r[i] = _mm512_castsi512_ps(to_bf16_pairs(lo, hi));
        } else {
          r[i] = _mm512_setzero_ps();
        }
      }
      transpose16(r);  // r[t]: pair dp0 + t of keys j0..j0+15
      const int np = D2 - dp0 < 16 ? D2 - dp0 : 16;
      for (int t = 0; t < np; t++) _mm512_storeu_ps(reinterpret_cast<float*>(kt2 + (dp0 + t) * kBk + j0), r[t]);
    }
  }
}

VR_AVX512BF16 void pack_v(uint32_t* v2, const float* v, int64_t v_stride, int nk, int D) {
  // vcvtne2ps2bf16 gives [row a (16) | row b (16)]; this permutation interleaves them into (a_d, b_d) pairs.
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kInterleave);
  const int njp = (nk + 1) / 2;
  for (int jp = 0; jp < njp; jp++) {
    const float* a = v + (2 * jp) * v_stride;
    const float* b = v + (2 * jp + 1) * v_stride;
    const bool has_b = 2 * jp + 1 < nk;
    uint32_t* dst = v2 + jp * D;
    for (int d = 0; d < D; d += 16) {
      const __m512 va = _mm512_loadu_ps(a + d), vb = has_b ? _mm512_loadu_ps(b + d) : _mm512_setzero_ps();
      _mm512_storeu_si512(dst + d, _mm512_permutexvar_epi16(idx, to_bf16_pairs(va, vb)));
    }
  }
}

VR_AVX512BF16 void scores(float* s, const uint16_t* q16, const uint32_t* kt2, int R, int D, float scale) {
  int r = 0;
  for (; r + 6 <= R; r += 6) scores_tile<6>(s + r * kBk, q16 + r * D, kt2, D, scale);
  switch (R - r) {
    case 5: scores_tile<5>(s + r * kBk, q16 + r * D, kt2, D, scale); break;
    case 4: scores_tile<4>(s + r * kBk, q16 + r * D, kt2, D, scale); break;
    case 3: scores_tile<3>(s + r * kBk, q16 + r * D, kt2, D, scale); break;
    case 2: scores_tile<2>(s + r * kBk, q16 + r * D, kt2, D, scale); break;
    case 1: scores_tile<1>(s + r * kBk, q16 + r * D, kt2, D, scale); break;
    default: break;
  }
}

// Rows go in groups of 16 so the per-row statistics are vectors with one row per lane: the row max and sum come
// from a register transpose of the 16 rows' partial vectors (no horizontal reduction per row), and the rescale
// factors alpha = exp(m_old - m_new) of 16 rows are one exp.
VR_AVX512BF16 void softmax_pv(float* acc, float* m, float* l, const float* s, uint16_t* p16, const uint32_t* v2,
                              int R, int nk, int D) {
  const __m512 vninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const int njp = (nk + 1) / 2;
  alignas(64) float alpha[16], msafe[16];
  for (int r0 = 0; r0 < R; r0 += 16) {
    const int rg = R - r0 < 16 ? R - r0 : 16;
    const __mmask16 rows = lanes(rg);
    __m512 part[16];
    for (int rr = 0; rr < 16; rr++) {
      if (rr >= rg) {
        part[rr] = vninf;
        continue;
      }
      const float* srow = s + (r0 + rr) * kBk;
      __m512 mx = _mm512_mask_loadu_ps(vninf, lanes(nk), srow);
      for (int i = 1; i < 4; i++) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(vninf, lanes(nk - i * 16), srow + i * 16));
      part[rr] = mx;
    }
    transpose16(part);
    __m512 bmax = part[0];
    for (int i = 1; i < 16; i++) bmax = _mm512_max_ps(bmax, part[i]);  // lane rr: block max of row r0 + rr
    const __m512 mold = _mm512_mask_loadu_ps(vninf, rows, m + r0);
    const __m512 mnew = _mm512_max_ps(mold, bmax);
    // Rows with nothing visible yet keep m = -inf; exp(s - 0) of their -inf scores is 0, so they stay untouched.
    const __mmask16 seen = _mm512_cmp_ps_mask(mnew, vninf, _CMP_NEQ_OQ);
    const __mmask16 had = _mm512_cmp_ps_mask(mold, vninf, _CMP_NEQ_OQ);
    _mm512_store_ps(msafe, _mm512_maskz_mov_ps(seen, mnew));
    // alpha = exp(m_old - m_new) where m_old was finite; 0 where it was -inf (acc and l are 0 there anyway)
    _mm512_store_ps(alpha, _mm512_maskz_mov_ps(had, exp512(_mm512_maskz_sub_ps(had, mold, mnew))));
    for (int rr = 0; rr < rg; rr++) {
      const float* srow = s + (r0 + rr) * kBk;
      uint16_t* prow = p16 + rr * kBk;
      const __m512 vm = _mm512_set1_ps(msafe[rr]);
      __m512 pexp[4];
      for (int i = 0; i < 4; i++) pexp[i] = exp_nonpos(_mm512_sub_ps(_mm512_mask_loadu_ps(vninf, lanes(nk - i * 16), srow + i * 16), vm));
      part[rr] = _mm512_add_ps(_mm512_add_ps(pexp[0], pexp[1]), _mm512_add_ps(pexp[2], pexp[3]));
      _mm512_storeu_si512(prow, to_bf16_pairs(pexp[0], pexp[1]));
      _mm512_storeu_si512(prow + 32, to_bf16_pairs(pexp[2], pexp[3]));
    }
    for (int rr = rg; rr < 16; rr++) part[rr] = _mm512_setzero_ps();
    transpose16(part);
    __m512 bsum = part[0];
    for (int i = 1; i < 16; i++) bsum = _mm512_add_ps(bsum, part[i]);  // lane rr: sum of P of row r0 + rr
    const __m512 lold = _mm512_maskz_loadu_ps(rows, l + r0);
    _mm512_mask_storeu_ps(l + r0, rows, _mm512_fmadd_ps(lold, _mm512_load_ps(alpha), bsum));
    _mm512_mask_storeu_ps(m + r0, rows, mnew);
    if (D == 80) {
      for (int t0 = 0; t0 < rg; t0 += 4)
        pv_block80(rg - t0 < 4 ? rg - t0 : 4, acc + (r0 + t0) * D, alpha + t0, p16 + t0 * kBk, v2, njp);
    } else {
      for (int t0 = 0; t0 < rg; t0 += 6) {
        const int rt = rg - t0 < 6 ? rg - t0 : 6;
        pv_block(rt, acc + (r0 + t0) * D, D, alpha + t0, p16 + t0 * kBk, v2, njp);
      }
    }
  }
}

}  // namespace vr::cpu::bf16attn

#else  // not x86-64 GCC/Clang: never available, the fp32 tiles run

namespace vr::cpu::bf16attn {
bool available(int) { return false; }
void round_rows(uint16_t*, const float*, int64_t, int, int) {}
void pack_k(uint32_t*, const float*, int64_t, int, int) {}
void pack_v(uint32_t*, const float*, int64_t, int, int) {}
void scores(float*, const uint16_t*, const uint32_t*, int, int, float) {}
void softmax_pv(float*, float*, float*, const float*, uint16_t*, const uint32_t*, int, int, int) {}
}  // namespace vr::cpu::bf16attn

#endif
