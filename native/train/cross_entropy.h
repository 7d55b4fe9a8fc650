// Fused lm_head + softmax cross-entropy (issue #5): only rows with a target are projected, in chunks of rows, so
// no [T, vocab] tensor ever exists. Two passes: value() keeps each row's log-sum-exp; backward() recomputes the
// chunk's logits once the loss weight is known (the trainer's clamps decide it after every loss is computed).
#pragma once
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "ops/linear.h"

namespace vr {

// The rows the loss sees (targets != -100) and their targets, each checked in [0, V): one rule for the CPU's
// FusedCrossEntropy and the CUDA backend's twin (cuda/model/gpu_train_loss).
template <class Row>
void select_target_rows(const int32_t* targets, int64_t T, int64_t V, std::vector<Row>& rows, std::vector<int32_t>& tgt) {
  rows.clear();
  tgt.clear();
  for (int64_t t = 0; t < T; t++) {
    if (targets[t] == -100) continue;
    VR_CHECK(targets[t] >= 0 && targets[t] < V, "cross-entropy: target ", targets[t], " at position ", t,
             " is outside the vocabulary [0, ", V, ")");
    rows.push_back(Row(t));
    tgt.push_back(targets[t]);
  }
}

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
