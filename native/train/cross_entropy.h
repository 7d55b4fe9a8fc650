// Fused lm_head + softmax cross-entropy (issue #5): only rows with a target are projected, in chunks of rows, so
// no [T, vocab] tensor ever exists. Two passes: value() keeps each row's log-sum-exp; backward() recomputes the
// chunk's logits once the loss weight is known (the trainer's clamps decide it after every loss is computed).
#pragma once
#include <cstdint>
#include <vector>

#include "ops/linear.h"

namespace vr {

class FusedCrossEntropy {
 public:
  // targets [T]: -100 = ignored, else a vocabulary id. Returns the SUM of -log softmax(logits)[target] over the
  // rows with a target (count()).
  double value(const float* hidden, const int32_t* targets, int64_t T, int64_t D, const Linear& lm_head);
  int64_t count() const { return int64_t(rows_.size()); }
  // Upper bound of rows per logits chunk (default 512; tests lower it to cross chunk boundaries).
  void set_max_chunk_rows(int64_t n) { max_chunk_ = n > 0 ? n : 1; }
  // dhidden[row] += scale * (softmax - onehot) W ; dW += scale * (softmax - onehot)^T h  (for the rows of value()).
  void backward(const float* hidden, float scale, const Linear& lm_head, float* dW, float* dhidden) const;

 private:
  int64_t chunk_rows(int64_t V) const;
  int64_t D_ = 0, max_chunk_ = 512;
  std::vector<int64_t> rows_;
  std::vector<int32_t> tgt_;
  std::vector<float> lse_;
};

}  // namespace vr
