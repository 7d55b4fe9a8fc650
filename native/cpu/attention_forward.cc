// Flash-style attention forward on the CPU (see ops/attention.h for layouts and masking).
//
// Work unit: (segment, kv head, block of queries). The unit handles all G = Hq/Hkv query heads that share
// the kv head, so each K/V block loaded from memory serves G*Bq query rows (GQA decode: 7 rows per load).
// For each key block of Bk keys: S = Q K^T (K block transposed once so the dot products vectorise along
// keys), causal mask, online softmax (running max m, running sum l, rescaled accumulator), acc += P V.
// The full score matrix never exists; per-unit memory is O((G*Bq + Bk) * D).
// bf16 (p.bf16 and an AVX-512-BF16 CPU): the same loop over the bf16 tiles (attention_tiles_bf16.h): q rounded
// once per unit (unscaled; the scale multiplies the fp32 scores), every K/V block rounded and packed into
// vdpbf16ps pairs once per call (pack_kv) before the units, P rounded for P V.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention_tiles.h"
#include "cpu/attention_tiles_bf16.h"
#include "cpu/cpu_ops.h"
#include "cpu/simd.h"

namespace vr::cpu {

namespace {

constexpr int kBk = bf16attn::kBk;  // keys per block (64: both tile sets assume it)

struct Unit {
  int seg, g;
  int32_t i0, i1;  // query rows (relative to the segment)
};

// bf16: K/V blocks are rounded and packed into vdpbf16ps pairs (attention_tiles_bf16.h layouts). A segment read by
// several units (ViT full attention: 8 query blocks per head; GQA prefill: ~17 per kv head at 305 tokens) gets its
// blocks packed once, before the units run; a segment read by one unit (decode, ViT windows) is packed block by block
// inside the unit, where the packed block is still in L1 (packing ahead would send it through memory).
// Prepacked block (s, g, b) = key block b of segment s, kv head g: K pairs [D/2, 64] then V pairs [32, D].
struct PackedKV {
  std::vector<uint32_t> buf;
  std::vector<int64_t> block0;  // first block index of each segment; -1: packed inside its unit
  int64_t stride = 0;           // uint32 per block: 64 * D
  const uint32_t* kt2(const AttnParams& p, int s, int g, int64_t b) const {
    return buf.data() + ((block0[size_t(s)] + b) * p.Hkv + g) * stride;
  }
  const uint32_t* v2(const AttnParams& p, int s, int g, int64_t b) const { return kt2(p, s, g, b) + stride / 2; }
};

void pack_kv(PackedKV& pk, const float* k, const float* v, const AttnParams& p, int Bq) {
  const int D = p.D;
  pk.stride = int64_t(64) * D;
  pk.block0.assign(size_t(p.nseq), -1);
  std::vector<std::pair<int, int64_t>> blocks;  // (segment, block): packed in parallel over them x kv heads
  int64_t nblocks = 0;
  for (int s = 0; s < p.nseq; s++) {
    if (p.cu_q[s + 1] - p.cu_q[s] <= Bq) continue;  // one unit per kv head reads it
    pk.block0[size_t(s)] = nblocks;
    const int64_t nb = (p.cu_k[s + 1] - p.cu_k[s] + kBk - 1) / kBk;
    for (int64_t b = 0; b < nb; b++) blocks.push_back({s, b});
    nblocks += nb;
  }
  if (nblocks == 0) return;
  pk.buf.resize(size_t(nblocks * p.Hkv * pk.stride));
  const int64_t n = int64_t(blocks.size()) * p.Hkv;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const int s = blocks[size_t(i / p.Hkv)].first, g = int(i % p.Hkv);
    const int64_t b = blocks[size_t(i / p.Hkv)].second;
    const int64_t j0 = p.cu_k[s] + b * kBk;
    const int nk = int(std::min<int64_t>(kBk, p.cu_k[s + 1] - j0));
    uint32_t* dst = const_cast<uint32_t*>(pk.kt2(p, s, g, b));
    bf16attn::pack_k(dst, k + j0 * p.k_stride + int64_t(g) * D, p.k_stride, nk, D);
    bf16attn::pack_v(dst + pk.stride / 2, v + j0 * p.v_stride + int64_t(g) * D, p.v_stride, nk, D);
  }
}

// Prefetches the cache lines of n floats at p.
template <int RW = 0>
inline void prefetch_row(const float* p, int n) {
  for (int i = 0; i < n; i += 16) __builtin_prefetch(p + i, RW);
  __builtin_prefetch(p + n - 1, RW);
}

VR_CLONES void scale_row(float* o, const float* a, float s, int D) {
#pragma omp simd
  for (int d = 0; d < D; d++) o[d] = a[d] * s;
}

struct Scratch {
  std::vector<float> q, kt, s, acc, m, l;
  std::vector<uint16_t> q16, p16;
  std::vector<uint32_t> kt2, v2;
};

// Sets keys of the block [j0, j0 + nk) that query row r cannot see to -inf (causal, bottom-right aligned).
void mask_causal(float* s, int lds, const Unit& u, int R, int nq, int64_t j0, int nk, int64_t shift) {
  for (int r = 0; r < R; r++) {
    const int64_t lim = u.i0 + (r % nq) + 1 + shift - j0;  // first hidden key (block-relative)
    float* srow = s + size_t(r) * lds;
    for (int64_t j = std::max<int64_t>(0, lim); j < nk; j++) srow[j] = -std::numeric_limits<float>::infinity();
  }
}

void run_unit(const Unit& u, float* out, float* lse, const float* q, const float* k, const float* v,
              const AttnParams& p, int64_t Tq, const PackedKV* pk, Scratch& sc) {
  const int D = p.D, G = p.Hq / p.Hkv;
  const int64_t q0 = p.cu_q[u.seg], k0 = p.cu_k[u.seg];
  const int64_t Lq = p.cu_q[u.seg + 1] - q0, Lk = p.cu_k[u.seg + 1] - k0;
  const int nq = u.i1 - u.i0, R = G * nq;
  const bool use16 = pk != nullptr;
  if (!use16) {
    sc.q.resize(size_t(R) * D);
    sc.kt.resize(size_t(D) * kBk);
  }
  sc.s.resize(size_t(R) * kBk);
  if (use16) sc.acc.resize(size_t(R) * D);  // the bf16 tiles never read a row before its first write
  else sc.acc.assign(size_t(R) * D, 0.f);
  sc.m.assign(size_t(R), -std::numeric_limits<float>::infinity());
  sc.l.assign(size_t(R), 0.f);
  // Key j is visible to query i iff j < i + 1 + (Lk - Lq) (causal, bottom-right aligned).
  const int64_t shift = Lk - Lq;
  const int64_t kend = p.causal ? std::min<int64_t>(Lk, u.i1 + shift) : Lk;
  // Row r = hh * nq + i: query head g*G + hh, query u.i0 + i.
  auto q_row = [&](int r) { return q + (q0 + u.i0 + r % nq) * p.q_stride + int64_t(u.g * G + r / nq) * D; };
  const bool prepacked = use16 && pk->block0[size_t(u.seg)] >= 0;
  // Rows are far apart (fused qkv: 15 KB per ViT row) and short (320 B per head), so the hardware prefetcher
  // does not see them coming: ask for every line of this unit's q rows, output rows and first K/V block up front,
  // so the misses overlap instead of queueing behind the arithmetic (bf16 ViT windows: -14%).
  for (int r = 0; r < R; r++) prefetch_row(q_row(r), D);
  for (int r = 0; r < R; r++)  // the output rows, for writing
    prefetch_row<1>(out + (q0 + u.i0 + r % nq) * p.o_stride + int64_t(u.g * G + r / nq) * D, D);
  if (!prepacked)
    for (int64_t j = 0; j < std::min<int64_t>(kBk, kend); j++) {
      prefetch_row(k + (k0 + j) * p.k_stride + int64_t(u.g) * D, D);
      prefetch_row(v + (k0 + j) * p.v_stride + int64_t(u.g) * D, D);
    }
  if (use16) {
    sc.q16.resize(size_t(R) * D);
    sc.p16.resize(size_t(16) * kBk);
    if (!prepacked) {
      sc.kt2.resize(size_t(D / 2) * kBk);
      sc.v2.resize(size_t(kBk / 2) * D);
    }
    for (int r = 0; r < R; r++) bf16attn::round_rows(sc.q16.data() + size_t(r) * D, q_row(r), 0, 1, D);
    for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
      const int nk = int(std::min<int64_t>(kBk, kend - j0));
      const uint32_t* kt2 = sc.kt2.data();
      const uint32_t* v2 = sc.v2.data();
      if (prepacked) {
        kt2 = pk->kt2(p, u.seg, u.g, j0 / kBk);
        v2 = pk->v2(p, u.seg, u.g, j0 / kBk);
      } else {
        bf16attn::pack_k(sc.kt2.data(), k + (k0 + j0) * p.k_stride + int64_t(u.g) * D, p.k_stride, nk, D);
        bf16attn::pack_v(sc.v2.data(), v + (k0 + j0) * p.v_stride + int64_t(u.g) * D, p.v_stride, nk, D);
      }
      bf16attn::scores(sc.s.data(), sc.q16.data(), kt2, R, D, p.scale);
      if (p.causal && j0 + nk > u.i0 + shift + 1) mask_causal(sc.s.data(), kBk, u, R, nq, j0, nk, shift);
      bf16attn::softmax_pv(sc.acc.data(), sc.m.data(), sc.l.data(), sc.s.data(), sc.p16.data(), v2, R, nk, D);
    }
  } else {
    // Gather q (scaled) contiguously.
    for (int r = 0; r < R; r++) {
      const float* src = q_row(r);
      float* dst = sc.q.data() + size_t(r) * D;
      for (int d = 0; d < D; d++) dst[d] = src[d] * p.scale;
    }
    for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
      const int nk = int(std::min<int64_t>(kBk, kend - j0));
      const float* kb = k + (k0 + j0) * p.k_stride + int64_t(u.g) * D;
      const float* vb = v + (k0 + j0) * p.v_stride + int64_t(u.g) * D;
      transpose_k_block(sc.kt.data(), kb, p.k_stride, nk, D, kBk);
      scores_block(sc.s.data(), sc.q.data(), sc.kt.data(), R, nk, D, kBk);
      if (p.causal && j0 + nk > u.i0 + shift + 1) mask_causal(sc.s.data(), kBk, u, R, nq, j0, nk, shift);
      softmax_pv_block(sc.acc.data(), sc.m.data(), sc.l.data(), sc.s.data(), vb, p.v_stride, R, nk, D, kBk);
    }
  }
  for (int r = 0; r < R; r++) {
    const int hh = r / nq, i = r % nq;
    const int h = u.g * G + hh;
    const int64_t row = q0 + u.i0 + i;
    float* o = out + row * p.o_stride + int64_t(h) * D;
    const float l = sc.l[size_t(r)];
    if (l > 0.f) scale_row(o, sc.acc.data() + size_t(r) * D, 1.0f / l, D);
    else std::fill(o, o + D, 0.f);  // no visible key (its acc row may be unwritten)
    if (lse) lse[int64_t(h) * Tq + row] = l > 0.f ? sc.m[size_t(r)] + std::log(l) : -std::numeric_limits<float>::infinity();
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnParams& p) {
  const int G = p.Hq / p.Hkv;
  // Query block: aim for ~128 rows (G heads x Bq queries) per unit.
  const int Bq = std::max(1, 128 / G);
  std::vector<Unit> units;
  for (int s = 0; s < p.nseq; s++) {
    const int32_t Lq = p.cu_q[s + 1] - p.cu_q[s];
    for (int g = 0; g < p.Hkv; g++)
      for (int32_t i0 = 0; i0 < Lq; i0 += Bq) units.push_back({s, g, i0, std::min(Lq, i0 + Bq)});
  }
  const int64_t Tq = p.cu_q[p.nseq];
  static thread_local PackedKV packed;  // kept between calls: its pages stay mapped
  const bool use16 = p.bf16 && bf16attn::available(p.D);
  if (use16) pack_kv(packed, k, v, p, Bq);
  const PackedKV* pk = use16 ? &packed : nullptr;
#pragma omp parallel
  {
    Scratch sc;
#pragma omp for schedule(dynamic, 1)
    for (size_t u = 0; u < units.size(); u++) run_unit(units[u], out, lse, q, k, v, p, Tq, pk, sc);
  }
}

}  // namespace vr::cpu
