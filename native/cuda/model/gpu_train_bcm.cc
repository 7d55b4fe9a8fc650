// Forward: queries -> bf16 copies per box -> q GEMM; box rows gathered (padding slots zero) -> one k|v GEMM over
// the in_proj rows [D, 3D); cross-attention with the key padding mask; out_proj GEMM (+bias, fp32); LayerNorm.
// Backward in reverse: LayerNorm, out_proj, cross-attention (dq, dk|dv), the k|v and q GEMMs' weight gradients
// (in_proj rows [D, 3D) and [0, D)), and the queries' gradient summed over the boxes in box order.
#include "cuda/model/gpu_train_bcm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/gpu_train_kernels.h"
#include "cuda/model/model_kernels.h"
#include "model/bcm.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

const float kLnEps = 1e-6f;  // model/bcm.cc

void zero(void* p, size_t bytes, Stream s) {
  const cudaError_t e = cudaMemsetAsync(p, 0, bytes, s);
  VR_CHECK(e == cudaSuccess, "cuda BCM: clearing a buffer failed: ", cudaGetErrorString(e));
}

}  // namespace

GpuBoxCompression::GpuBoxCompression(GpuTrainParams& params, const std::string& prefix, int64_t D, int num_queries,
                                     Stream s)
    : p_(params), D_(D), nq_(num_queries), heads_(resampler_heads(D)), s_(s) {
  queries_ = &p_.get(prefix + "queries");
  in_w_ = &p_.get(prefix + "cross_attn.in_proj_weight");
  in_b_ = &p_.get(prefix + "cross_attn.in_proj_bias");
  out_w_ = &p_.get(prefix + "cross_attn.out_proj.weight");
  out_b_ = &p_.get(prefix + "cross_attn.out_proj.bias");
  ln_w_ = &p_.get(prefix + "output_norm.weight");
  ln_b_ = &p_.get(prefix + "output_norm.bias");
  VR_CHECK(D % heads_ == 0, "cuda BCM: hidden size ", D, " is not divisible by ", heads_, " heads");
  VR_CHECK(queries_->host->numel == int64_t(nq_) * D, "cuda BCM: ", queries_->host->name, " is not [1, ", nq_,
           ", ", D, "]");
  for (const DeviceParam* p : {in_w_, out_w_})
    VR_CHECK(p->w16, "cuda BCM: ", p->host->name, " has no bf16 shadow on the device");
  for (const DeviceParam* p : {queries_, in_b_, out_b_, ln_w_, ln_b_})
    VR_CHECK(p->w, "cuda BCM: ", p->host->name, " has no fp32 copy on the device");
}

void GpuBoxCompression::forward(float* Z, const float* V, int64_t nrows, const int32_t* idx, const int32_t* cu,
                                int64_t nb, float* attn) {
  const int64_t D = D_, nq = nq_, d = D / heads_;
  VR_CHECK(nb > 0 && cu[0] == 0, "cuda BCM: box index offsets must start at 0 (and at least one box)");
  int64_t N = 0;
  for (int64_t b = 0; b < nb; b++) {
    VR_CHECK(cu[b + 1] > cu[b], "cuda BCM: box ", b, " has no visual tokens");
    N = std::max<int64_t>(N, cu[b + 1] - cu[b]);
  }
  for (int64_t r = 0; r < cu[nb]; r++)
    VR_CHECK(idx[r] >= 0 && idx[r] < nrows, "cuda BCM: box token ", r, " indexes row ", idx[r], " of ", nrows);
  nb_ = nb;
  N_ = N;
  const int64_t R = nb * nq, K = nb * N;

  // Padded gather list (-1: a padding slot, which embedding_forward fills with zeros) and the key padding mask.
  std::vector<int32_t> slots(size_t(K), -1);
  std::vector<uint8_t> pad(size_t(K), 1);
  for (int64_t b = 0; b < nb; b++)
    for (int64_t j = 0; j < cu[b + 1] - cu[b]; j++) {
      slots[size_t(b * N + j)] = idx[cu[b] + j];
      pad[size_t(b * N + j)] = 0;
    }
  float* rows32 = nullptr;
  int32_t* slots_dev = nullptr;
  auto carve = [&](auto& a) {
    q0_16_ = a.template take<bf16>(R * D);
    rows16_ = a.template take<bf16>(K * D);
    q16_ = a.template take<bf16>(R * D);
    kv16_ = a.template take<bf16>(K * 2 * D);
    o16_ = a.template take<bf16>(R * D);
    key_pad_ = a.template take<uint8_t>(K);
    lse_ = a.template take<float>(int64_t(heads_) * R);
    pre_ = a.template take<float>(R * D);
    mean_ = a.template take<float>(R);
    rstd_ = a.template take<float>(R);
    rows32 = a.template take<float>(K * D);
    slots_dev = a.template take<int32_t>(K);
  };
  ArenaSizer size;
  carve(size);
  arena_ = DeviceArena();
  arena_ = DeviceArena(size.bytes(), "BCM activations");
  carve(arena_);
  copy_to_device(slots_dev, slots.data(), slots.size() * sizeof(int32_t), "BCM box rows", s_);
  copy_to_device(key_pad_, pad.data(), pad.size(), "BCM key padding mask", s_);

  // q: the learned queries, one bf16 copy per box (the CPU projects each box's copy too).
  convert(q0_16_, queries_->w, nq * D, s_);
  for (int64_t b = 1; b < nb; b++)
    copy_on_device(q0_16_ + b * nq * D, q0_16_, size_t(nq * D) * sizeof(bf16), "BCM queries", s_);
  gemm_linear_forward(q16_, q0_16_, in_w_->w16, in_b_->w, R, D, D, false, s_);
  // k|v of every box's rows in one GEMM: in_proj rows [D, 3D) are W_k then W_v.
  embedding_forward(rows32, slots_dev, K, V, nrows, D, s_);
  convert(rows16_, rows32, K * D, s_);
  gemm_linear_forward(kv16_, rows16_, in_w_->w16 + D * D, in_b_->w + D, K, 2 * D, D, false, s_);

  args_ = CrossAttnArgs();
  args_.L = int(nb);
  args_.Nq = nq_;
  args_.N = int(N);
  args_.H = heads_;
  args_.D = int(d);
  args_.scale = 1.0f / std::sqrt(float(d));
  args_.q_stride = D;
  args_.k_stride = args_.v_stride = 2 * D;
  cross_attention_forward(o16_, lse_, attn, q16_, kv16_, kv16_ + D, key_pad_, args_, s_);
  gemm_linear_forward(pre_, o16_, out_w_->w16, out_b_->w, R, D, D, false, s_);
  layernorm_forward(Z, mean_, rstd_, pre_, ln_w_->w, ln_b_->w, R, D, kLnEps, s_);
}

void GpuBoxCompression::backward(const float* dZ, const float* dattn) {
  VR_CHECK(nb_ > 0, "cuda BCM backward: no forward pass to differentiate");
  for (const DeviceParam* p : {queries_, in_w_, in_b_, out_w_, out_b_, ln_w_, ln_b_})
    VR_CHECK(p->g, "cuda BCM backward: ", p->host->name, " is frozen");
  const int64_t D = D_, nq = nq_, R = nb_ * nq, K = nb_ * N_;
  DeviceArena scratch;
  float *dpre = nullptr, *dq0 = nullptr;
  bf16 *d16 = nullptr, *dq16 = nullptr, *dkv16 = nullptr;
  auto carve = [&](auto& a) {
    dpre = a.template take<float>(R * D);
    dq0 = a.template take<float>(R * D);
    d16 = a.template take<bf16>(R * D);
    dq16 = a.template take<bf16>(R * D);
    dkv16 = a.template take<bf16>(K * 2 * D);
  };
  ArenaSizer size;
  carve(size);
  scratch = DeviceArena(size.bytes(), "BCM backward scratch");
  carve(scratch);

  zero(dpre, size_t(R * D) * sizeof(float), s_);
  layernorm_backward(dpre, ln_w_->g, ln_b_->g, dZ, pre_, ln_w_->w, mean_, rstd_, R, D, s_);
  convert(d16, dpre, R * D, s_);
  zero(dpre, size_t(R * D) * sizeof(float), s_);  // now d(attention output), fp32
  gemm_linear_backward(dpre, out_w_->g, out_b_->g, d16, o16_, out_w_->w16, R, D, D, s_);
  convert(d16, dpre, R * D, s_);
  zero(dq16, size_t(R * D) * sizeof(bf16), s_);
  zero(dkv16, size_t(K * 2 * D) * sizeof(bf16), s_);
  cross_attention_backward(dq16, dkv16, dkv16 + D, d16, dattn, o16_, lse_, q16_, kv16_, kv16_ + D, key_pad_, args_,
                           s_);
  gemm_linear_backward(nullptr, in_w_->g + D * D, in_b_->g + D, dkv16, rows16_, in_w_->w16 + D * D, K, 2 * D, D,
                       s_);
  zero(dq0, size_t(R * D) * sizeof(float), s_);
  gemm_linear_backward(dq0, in_w_->g, in_b_->g, dq16, q0_16_, in_w_->w16, R, D, D, s_);
  sum_groups_add(queries_->g, dq0, nb_, nq * D, s_);
  device_sync("BCM backward");  // the scratch arena is freed on return
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
