#include "cuda/model/gpu_train_loss.h"

#include <algorithm>

#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/model_kernels.h"
#include "train/cross_entropy.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

int64_t GpuFusedCrossEntropy::chunk_rows() const {
  const int64_t budget = int64_t(1) << 25;  // floats of logits per chunk (128 MiB), as the CPU
  return std::max<int64_t>(1, std::min<int64_t>(max_chunk_, budget / std::max<int64_t>(1, V_)));
}

void GpuFusedCrossEntropy::chunk_logits(const float* hidden, const bf16* lm_head, int64_t r0, int64_t m,
                                        const float* grad_scale) {
  // The hidden rows are gathered as "embedding rows" of the [T, D] table (the row list is in range by
  // construction), rounded once to bf16 for the GEMM.
  embedding_forward(h32_, rows_dev_ + r0, m, hidden, T_, D_, s_);
  convert(h16_, h32_, m * D_, s_);
  gemm_linear_forward(logits_, h16_, lm_head, nullptr, m, V_, D_, false, s_);
  cross_entropy_forward_backward(losses_ + r0, grad_scale ? logits_ : nullptr, logits_, tgt_dev_ + r0, m, V_,
                                 grad_scale ? *grad_scale : 1.0f, -100, s_);
}

double GpuFusedCrossEntropy::value(const float* hidden, const int32_t* targets, int64_t T, int64_t D,
                                   const bf16* lm_head, int64_t V) {
  VR_CHECK(T >= 0 && D > 0 && V > 0, "cuda cross-entropy: bad shape T=", T, " D=", D, " V=", V);
  VR_CHECK(T <= 0x7fffffff, "cuda cross-entropy: too many rows (", T, ")");
  T_ = T;
  D_ = D;
  V_ = V;
  select_target_rows(targets, T, V, rows_, tgt_);
  const int64_t n = count();
  if (n == 0) return 0;
  VR_CHECK(hidden && lm_head, "cuda cross-entropy: null hidden states or lm_head");
  const int64_t C = std::min(n, chunk_rows());
  auto carve = [&](auto& a) {
    rows_dev_ = a.template take<int32_t>(n);
    tgt_dev_ = a.template take<int32_t>(n);
    losses_ = a.template take<float>(n);
    h32_ = a.template take<float>(C * D);
    h16_ = a.template take<bf16>(C * D);
    logits_ = a.template take<float>(C * V);
    d16_ = a.template take<bf16>(C * V);
    dh_ = a.template take<float>(C * D);
  };
  ArenaSizer size;
  carve(size);
  arena_ = DeviceArena();
  arena_ = DeviceArena(size.bytes(), "cross-entropy chunk");
  carve(arena_);
  copy_to_device(rows_dev_, rows_.data(), size_t(n) * sizeof(int32_t), "cross-entropy rows", s_);
  copy_to_device(tgt_dev_, tgt_.data(), size_t(n) * sizeof(int32_t), "cross-entropy targets", s_);
  for (int64_t r0 = 0; r0 < n; r0 += C) chunk_logits(hidden, lm_head, r0, std::min(C, n - r0), nullptr);
  std::vector<float> losses(static_cast<size_t>(n));
  copy_to_host(losses.data(), losses_, losses.size() * sizeof(float), "cross-entropy losses", s_);
  double total = 0;
  for (float l : losses) total += double(l);
  return total;
}

void GpuFusedCrossEntropy::backward(const float* hidden, float scale, const bf16* lm_head, float* dW,
                                    float* dhidden) {
  const int64_t n = count();
  if (n == 0 || scale == 0.f) return;
  VR_CHECK(dhidden, "cuda cross-entropy backward: null dhidden");
  const int64_t C = std::min(n, chunk_rows());
  for (int64_t r0 = 0; r0 < n; r0 += C) {
    const int64_t m = std::min(C, n - r0);
    chunk_logits(hidden, lm_head, r0, m, &scale);  // logits_ now holds scale * (softmax - onehot)
    convert(d16_, logits_, m * V_, s_);
    const cudaError_t e = cudaMemsetAsync(dh_, 0, size_t(m * D_) * sizeof(float), s_);
    VR_CHECK(e == cudaSuccess, "cuda cross-entropy: clearing dh failed: ", cudaGetErrorString(e));
    gemm_linear_backward(dh_, dW, nullptr, d16_, h16_, lm_head, m, V_, D_, s_);
    embedding_backward(dhidden, dh_, rows_dev_ + r0, m, T_, D_, s_);  // dhidden[rows] += dh (rows distinct)
  }
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
