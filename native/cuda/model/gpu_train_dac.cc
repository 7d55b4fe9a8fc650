// Forward: Hq -> bf16 -> q GEMM (in_proj rows [0, D)); each box's sample rows gathered (padding slots zero) -> one
// k|v GEMM over the in_proj rows [D, 3D); cross-attention with the key padding mask (+ head-averaged attention);
// out_proj GEMM (+bias, fp32); LayerNorm. Backward in reverse, with the attention map's gradient (the KL's) fed to
// the cross-attention backward; the q GEMM's input gradient lands in dHq.
#include "cuda/model/gpu_train_dac.h"

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
  VR_CHECK(e == cudaSuccess, "cuda DAC: clearing a buffer failed: ", cudaGetErrorString(e));
}

}  // namespace

GpuDynamicCompression::GpuDynamicCompression(GpuTrainParams& params, const std::string& prefix, int64_t D, Stream s)
    : p_(params), D_(D), heads_(resampler_heads(D)), s_(s) {
  in_w_ = &p_.get(prefix + "cross_attn.in_proj_weight");
  in_b_ = &p_.get(prefix + "cross_attn.in_proj_bias");
  out_w_ = &p_.get(prefix + "cross_attn.out_proj.weight");
  out_b_ = &p_.get(prefix + "cross_attn.out_proj.bias");
  ln_w_ = &p_.get(prefix + "output_norm.weight");
  ln_b_ = &p_.get(prefix + "output_norm.bias");
  VR_CHECK(D % heads_ == 0, "cuda DAC: hidden size ", D, " is not divisible by ", heads_, " heads");
  for (const DeviceParam* p : {in_w_, out_w_})
    VR_CHECK(p->w16, "cuda DAC: ", p->host->name, " has no bf16 shadow on the device");
  for (const DeviceParam* p : {in_b_, out_b_, ln_w_, ln_b_})
    VR_CHECK(p->w, "cuda DAC: ", p->host->name, " has no fp32 copy on the device");
}

void GpuDynamicCompression::forward(float* Z, const float* Hq, int64_t nb, int nq, const float* V, int64_t nrows,
                                    const int32_t* cu_sample, int64_t nsamples, const int32_t* box_sample,
                                    float* attn) {
  const int64_t D = D_, d = D / heads_;
  VR_CHECK(nb > 0 && nq > 0, "cuda DAC: no boxes or no queries");
  VR_CHECK(cu_sample[0] >= 0 && cu_sample[nsamples] <= nrows, "cuda DAC: sample rows [", cu_sample[0], ", ",
           cu_sample[nsamples], ") outside the ", nrows, " visual rows");
  int64_t S = 0;
  for (int64_t b = 0; b < nb; b++) {
    const int32_t s = box_sample[b];
    VR_CHECK(s >= 0 && s < nsamples, "cuda DAC: box ", b, " belongs to sample ", s, " of ", nsamples);
    const int64_t n = int64_t(cu_sample[s + 1]) - cu_sample[s];
    VR_CHECK(n > 0, "DAC: sample ", s, " owns box ", b, " but has no visual tokens");
    S = std::max(S, n);
  }
  nb_ = nb;
  S_ = S;
  R_ = nb * nq;
  const int64_t R = R_, K = nb * S;

  // Padded gather list (-1: a padding slot, which embedding_forward fills with zeros) and the key padding mask.
  std::vector<int32_t> slots(size_t(K), -1);
  std::vector<uint8_t> pad(size_t(K), 1);
  for (int64_t b = 0; b < nb; b++) {
    const int32_t s = box_sample[b];
    for (int64_t j = 0; j < int64_t(cu_sample[s + 1]) - cu_sample[s]; j++) {
      slots[size_t(b * S + j)] = int32_t(cu_sample[s] + j);
      pad[size_t(b * S + j)] = 0;
    }
  }
  float* rows32 = nullptr;
  int32_t* slots_dev = nullptr;
  auto carve = [&](auto& a) {
    hq16_ = a.template take<bf16>(R * D);
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
  arena_ = DeviceArena(size.bytes(), "DAC activations");
  carve(arena_);
  copy_to_device(slots_dev, slots.data(), slots.size() * sizeof(int32_t), "DAC sample rows", s_);
  copy_to_device(key_pad_, pad.data(), pad.size(), "DAC key padding mask", s_);

  // q from the hidden states (bf16 operand, as every GEMM input).
  convert(hq16_, Hq, R * D, s_);
  gemm_linear_forward(q16_, hq16_, in_w_->w16, in_b_->w, R, D, D, false, s_);
  // k|v of every box's sample rows in one GEMM: in_proj rows [D, 3D) are W_k then W_v.
  embedding_forward(rows32, slots_dev, K, V, nrows, D, s_);
  convert(rows16_, rows32, K * D, s_);
  gemm_linear_forward(kv16_, rows16_, in_w_->w16 + D * D, in_b_->w + D, K, 2 * D, D, false, s_);

  args_ = CrossAttnArgs();
  args_.L = int(nb);
  args_.Nq = nq;
  args_.N = int(S);
  args_.H = heads_;
  args_.D = int(d);
  args_.scale = 1.0f / std::sqrt(float(d));
  args_.q_stride = D;
  args_.k_stride = args_.v_stride = 2 * D;
  if (attn) zero(attn, size_t(R * S) * sizeof(float), s_);  // the padding columns stay 0
  cross_attention_forward(o16_, lse_, attn, q16_, kv16_, kv16_ + D, key_pad_, args_, s_);
  gemm_linear_forward(pre_, o16_, out_w_->w16, out_b_->w, R, D, D, false, s_);
  layernorm_forward(Z, mean_, rstd_, pre_, ln_w_->w, ln_b_->w, R, D, kLnEps, s_);
}

void GpuDynamicCompression::backward(const float* dZ, const float* dattn, float* dHq) {
  VR_CHECK(nb_ > 0, "cuda DAC backward: no forward pass to differentiate");
  for (const DeviceParam* p : {in_w_, in_b_, out_w_, out_b_, ln_w_, ln_b_})
    VR_CHECK(p->g, "cuda DAC backward: ", p->host->name, " is frozen");
  const int64_t D = D_, R = R_, K = nb_ * S_;
  DeviceArena scratch;
  float* dpre = nullptr;
  bf16 *d16 = nullptr, *dq16 = nullptr, *dkv16 = nullptr;
  auto carve = [&](auto& a) {
    dpre = a.template take<float>(R * D);
    d16 = a.template take<bf16>(R * D);
    dq16 = a.template take<bf16>(R * D);
    dkv16 = a.template take<bf16>(K * 2 * D);
  };
  ArenaSizer size;
  carve(size);
  scratch = DeviceArena(size.bytes(), "DAC backward scratch");
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
  gemm_linear_backward(dHq, in_w_->g, in_b_->g, dq16, hq16_, in_w_->w16, R, D, D, s_);
  device_sync("DAC backward");  // the scratch arena is freed on return
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
