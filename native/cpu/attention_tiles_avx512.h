// AVX-512 versions of the attention tiles (attention_tiles_avx512.cc), for head dims that are multiples of
// 16 and key blocks of exactly 64 columns (lds == 64). Call only when cpu_features().avx512f is true.
#pragma once
#include <cstdint>

namespace vr::cpu::avx512 {

void transpose_k_block(float* kt, const float* k, int64_t k_stride, int nk, int D);
void scores_block(float* s, const float* q, const float* kt, int R, int D);
void softmax_pv_block(float* acc, float* m, float* l, float* s, const float* v, int64_t v_stride, int R, int nk,
                      int D);
void probs_dscores_block(float* s, float* dp, const float* lse, const float* drow, const int* lim, int R, int nk);
void accumulate_block(float* out, int64_t out_stride, int n_out, const float* coef, int cs_out, int cs_in,
                      const float* src, int64_t src_stride, int n_in, int D);

}  // namespace vr::cpu::avx512
