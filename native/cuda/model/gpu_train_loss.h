// Fused lm_head + softmax cross-entropy on the CUDA backend: the device twin of train/cross_entropy.h
// (FusedCrossEntropy), same two passes. Only the rows with a target are projected, in chunks of rows, so no
// [T, vocab] tensor ever exists: value() gives the loss sum (the trainer's clamps decide the loss weight after
// every loss is known); backward() recomputes each chunk's logits and applies the weight.
//
// Precision: the hidden rows and the lm_head weight are bf16 GEMM operands, the logits fp32 (softmax statistics
// from fp32 logits, as the cross_entropy kernel), the logits' gradient rounded to bf16 for the two backward GEMMs,
// dhidden and dW fp32.
#pragma once
#include <cstdint>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuFusedCrossEntropy {
 public:
  explicit GpuFusedCrossEntropy(Stream s = nullptr) : s_(s) {}
  // hidden [T, D] fp32 (device), targets [T] (HOST: -100 = ignored, else an id in [0, V); a one-line error
  // otherwise), lm_head [V, D] bf16 (device). Returns the SUM of -log softmax(logits)[target] over the rows with
  // a target (count()), added in row order in fp64.
  double value(const float* hidden, const int32_t* targets, int64_t T, int64_t D, const bf16* lm_head, int64_t V);
  int64_t count() const { return int64_t(rows_.size()); }
  // Upper bound of rows per logits chunk (default 512; tests lower it to cross chunk boundaries).
  void set_max_chunk_rows(int64_t n) { max_chunk_ = n > 0 ? n : 1; }
  // dhidden[row] += scale * (softmax - onehot) W ; dW += scale * (softmax - onehot)^T h, for the rows of value()
  // (dW fp32 [V, D], may be null; dhidden fp32 [T, D], device).
  void backward(const float* hidden, float scale, const bf16* lm_head, float* dW, float* dhidden);

 private:
  int64_t chunk_rows() const;
  // Chunk r0..r0+m: hidden rows gathered into h16_, logits_ = h16_ W^T, then the cross-entropy kernel (dlogits
  // in place when grad_scale is given).
  void chunk_logits(const float* hidden, const bf16* lm_head, int64_t r0, int64_t m, const float* grad_scale);
  Stream s_;
  int64_t T_ = 0, D_ = 0, V_ = 0, max_chunk_ = 512;
  std::vector<int32_t> rows_, tgt_;
  DeviceArena arena_;
  int32_t *rows_dev_ = nullptr, *tgt_dev_ = nullptr;
  float *h32_ = nullptr, *logits_ = nullptr, *losses_ = nullptr, *dh_ = nullptr;
  bf16 *h16_ = nullptr, *d16_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
