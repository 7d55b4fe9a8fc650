// AVX-512-BF16 tiles of the bf16 attention forward (AttnParams::bf16, i.e. --dtype bf16 inference): q, k, v and
// the probabilities P are rounded to bf16 (RNE), vdpbf16ps multiplies pairs and accumulates in fp32, the online
// softmax (max, exp, sums, rescaling) stays fp32. Key blocks of 64 (kBk); head dims that are multiples of 16.
// Call only when attention_tiles_bf16(D) is true (cpu_features().avx512_bf16, checked at run time).
//
// vdpbf16ps adds a[2i] b[2i] + a[2i+1] b[2i+1] into fp32 lane i, so each operand is stored as bf16 pairs
// along the reduction axis (one uint32 per pair):
//   q16 [R, D]      bf16 rows (pairs are adjacent head-dim elements already)
//   kt2 [D/2, 64]   kt2[dp*64 + j] = (k[j, 2dp], k[j, 2dp+1]): lanes run over keys for S = Q K^T
//   v2  [32, D]     v2[jp*D + d] = (v[2jp, d], v[2jp+1, d]):   lanes run over head dims for acc += P V
//   p16 [16, 64]    bf16 probabilities of up to 16 rows (scratch; pairs are adjacent keys)
#pragma once
#include <cstdint>

namespace vr::cpu::bf16attn {

constexpr int kBk = 64;

// True when the bf16 tiles run for head dim D on this CPU.
bool available(int D);
// q16[r*D + d] = bf16(src[r*src_stride + d]) for r < rows.
void round_rows(uint16_t* q16, const float* src, int64_t src_stride, int rows, int D);
// K block (nk <= 64 rows) -> kt2; keys nk..63 are zero so their scores are finite (the softmax masks them).
void pack_k(uint32_t* kt2, const float* k, int64_t k_stride, int nk, int D);
// V block (nk <= 64 rows) -> v2 for pairs jp < ceil(nk/2); an odd nk gets a zero row nk.
void pack_v(uint32_t* v2, const float* v, int64_t v_stride, int nk, int D);
// s[r*64 + j] = scale * sum_d q16[r, d] k[j, d] for r < R, all 64 j.
void scores(float* s, const uint16_t* q16, const uint32_t* kt2, int R, int D, float scale);
// Online-softmax update of R rows with the score block s (columns >= nk and masked entries -inf ignored):
// as softmax_pv_block (attention_tiles.h), with P rounded to bf16 (into p16, scratch) for the P V product
// while l sums the fp32 P. acc rows whose m is still -inf are never read (they need no zero fill).
void softmax_pv(float* acc, float* m, float* l, const float* s, uint16_t* p16, const uint32_t* v2, int R, int nk,
                int D);

}  // namespace vr::cpu::bf16attn
