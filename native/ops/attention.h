// Flash-style attention over packed variable-length sequences (tiled, online softmax, never the full
// score matrix), forward and backward side by side.
//
// Layout (rows are tokens):
//   q   [Tq, Hq, D]   row stride q_stride floats (>= Hq*D), so q can be a slice of a fused qkv buffer
//   k,v [Tk, Hkv, D]  row strides k_stride, v_stride; GQA: query head h reads kv head h / (Hq/Hkv)
//   out [Tq, Hq, D]   row stride o_stride
//   lse [Hq, Tq]      optional log-sum-exp of the scaled scores (needed by backward / probabilities)
// Segments: sequence s owns query rows [cu_q[s], cu_q[s+1]) and key rows [cu_k[s], cu_k[s+1]).
// Windows (the ViT's window blocks) and packed samples are just more segments.
// Causal: aligned bottom-right as in flash-attention: with Lq queries and Lk keys in a segment, query i
// sees keys j <= i + (Lk - Lq). This covers prefill (Lq == Lk) and decode with a KV cache (Lq == 1).
// A query that sees no key at all (Lk == 0, or Lq > Lk under the causal mask) gets out = 0 and lse = -inf.
#pragma once
#include <cstdint>

namespace vr {

struct AttnParams {
  int Hq = 0, Hkv = 0, D = 0;
  float scale = 1.0f;              // usually 1/sqrt(D)
  bool causal = false;
  int nseq = 0;                    // number of segments
  const int32_t* cu_q = nullptr;   // [nseq+1]
  const int32_t* cu_k = nullptr;   // [nseq+1]
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, o_stride = 0;  // floats per token row
  // Forward only (bf16 inference): q, k, v and the probabilities are rounded to bf16 and multiplied with fp32
  // accumulation (AVX-512-BF16); softmax statistics stay fp32. Without that CPU feature (or for head dims that
  // are not multiples of 16) the fp32 kernel runs. The backward rejects it (training stays fp32).
  bool bf16 = false;
};

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnParams& p);

// Backward (training): dq, dk, dv have the layouts of q, k, v (strides as in p; dk/dv rows summed over
// the query heads that share a kv head). Uses out and lse from the forward pass. Gradients are ACCUMULATED
// (+=) like every other backward here, so zero them first; any of dq, dk, dv may be null to skip it.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v,
                        const AttnParams& p);

}  // namespace vr
