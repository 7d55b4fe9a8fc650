#include "train/attention_capture.h"

#include <algorithm>

#include "core/error.h"

namespace vr {

int64_t captured_boxes(const AttentionCapture& c, int64_t boxes) {
  return c.max_boxes < 0 ? boxes : std::min(boxes, c.max_boxes);
}

BoxAttention box_attention(const TrainBatch& b, int64_t box, int64_t K, const float* At, int64_t t_stride,
                           const float* A, int64_t a_stride) {
  BoxAttention a;
  a.box = box;
  a.sample = b.box_sample[size_t(box)];
  const int32_t v0 = b.cu_sample_visual[size_t(a.sample)];
  a.tokens = b.cu_sample_visual[size_t(a.sample) + 1] - v0;
  // The sample's first image is the one whose tokens start where the sample's do (validate_batch checked the
  // tables, and a sample that owns a box has visual tokens).
  a.image = -1;
  for (size_t i = 0; i + 1 < b.cu_image_tokens.size(); i++)
    if (b.cu_image_tokens[i] == v0 && b.cu_image_tokens[i + 1] > v0) {
      a.image = int(i);
      break;
    }
  VR_CHECK(a.image >= 0, "attention capture: box ", box, "'s sample ", a.sample, " has no image");
  a.grid = b.grids[size_t(a.image)];
  const int32_t j0 = b.cu_box_tokens[size_t(box)], j1 = b.cu_box_tokens[size_t(box) + 1];
  a.box_tokens.assign(b.box_local_idx.begin() + j0, b.box_local_idx.begin() + j1);
  const int64_t S = a.tokens, N = j1 - j0;
  VR_CHECK(t_stride >= N && (A == nullptr || a_stride >= S), "attention capture: box ", box, "'s maps are narrower (",
           t_stride, ", ", a_stride, ") than its ", N, " tokens / its sample's ", S);
  // Scatter as the KL does (latent_losses.h): T[q, local_idx[j]] = At[q, j], zero elsewhere.
  a.teacher.assign(size_t(K * S), 0.f);
  for (int64_t j = 0; j < N; j++) {
    const int32_t s = a.box_tokens[size_t(j)];
    VR_CHECK(s >= 0 && s < S, "attention capture: box ", box, " token ", s, " is outside its sample's ", S,
             " visual tokens");
    for (int64_t q = 0; q < K; q++) a.teacher[size_t(q * S + s)] = At[q * t_stride + j];
  }
  if (A) {
    a.student.resize(size_t(K * S));
    for (int64_t q = 0; q < K; q++) std::copy(A + q * a_stride, A + q * a_stride + S, a.student.begin() + q * S);
  }
  return a;
}

}  // namespace vr
