// Forward: query input (bf16, filled by the head) -> q GEMM (in_proj rows [0, D)); the key rows gathered (padding
// slots zero) -> one k|v GEMM over in_proj rows [D, 3D); cross-attention with the key padding mask (+ head-averaged
// attention); out_proj GEMM (+bias, fp32); LayerNorm. Backward in reverse, with the attention map's gradient (the
// stage-2 KL's) fed to the cross-attention backward; the q GEMM's input gradient is added to dqin.
#include "cuda/model/gpu_train_resampler.h"

#include <cmath>

#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/model_kernels.h"
#include "model/bcm.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

const float kLnEps = 1e-6f;  // model/bcm.cc

void zero(void* p, size_t bytes, const char* what, Stream s) {
  const cudaError_t e = cudaMemsetAsync(p, 0, bytes, s);
  VR_CHECK(e == cudaSuccess, "cuda ", what, ": clearing a buffer failed: ", cudaGetErrorString(e));
}

}  // namespace

GpuCrossAttnBlock::GpuCrossAttnBlock(GpuTrainParams& params, const std::string& prefix, int64_t D, const char* what,
                                     Stream s)
    : p_(params), D_(D), heads_(resampler_heads(D)), what_(what), s_(s) {
  in_w_ = &p_.get(prefix + "cross_attn.in_proj_weight");
  in_b_ = &p_.get(prefix + "cross_attn.in_proj_bias");
  out_w_ = &p_.get(prefix + "cross_attn.out_proj.weight");
  out_b_ = &p_.get(prefix + "cross_attn.out_proj.bias");
  ln_w_ = &p_.get(prefix + "output_norm.weight");
  ln_b_ = &p_.get(prefix + "output_norm.bias");
  VR_CHECK(D % heads_ == 0, "cuda ", what_, ": hidden size ", D, " is not divisible by ", heads_, " heads");
  for (const DeviceParam* p : {in_w_, out_w_})
    VR_CHECK(p->w16, "cuda ", what_, ": ", p->host->name, " has no bf16 shadow on the device");
  for (const DeviceParam* p : {in_b_, out_b_, ln_w_, ln_b_})
    VR_CHECK(p->w, "cuda ", what_, ": ", p->host->name, " has no fp32 copy on the device");
}

bf16* GpuCrossAttnBlock::begin(int64_t L, int nq, int64_t N, const std::vector<int32_t>& slots) {
  VR_CHECK(L > 0 && nq > 0 && N > 0, "cuda ", what_, ": no groups, queries or keys");
  VR_CHECK(int64_t(slots.size()) == L * N, "cuda ", what_, ": ", slots.size(), " key slots for ", L, " x ", N);
  const int64_t D = D_, R = L * nq, K = L * N;
  L_ = L;
  N_ = N;
  R_ = R;
  std::vector<uint8_t> pad(slots.size());
  for (size_t i = 0; i < slots.size(); i++) pad[i] = slots[i] < 0;
  auto carve = [&](auto& a) {
    qin16_ = a.template take<bf16>(R * D);
    rows16_ = a.template take<bf16>(K * D);
    q16_ = a.template take<bf16>(R * D);
    kv16_ = a.template take<bf16>(K * 2 * D);
    o16_ = a.template take<bf16>(R * D);
    key_pad_ = a.template take<uint8_t>(K);
    lse_ = a.template take<float>(int64_t(heads_) * R);
    pre_ = a.template take<float>(R * D);
    mean_ = a.template take<float>(R);
    rstd_ = a.template take<float>(R);
    rows32_ = a.template take<float>(K * D);
    slots_ = a.template take<int32_t>(K);
  };
  ArenaSizer size;
  carve(size);
  arena_ = DeviceArena();
  arena_ = DeviceArena(size.bytes(), std::string(what_) + " activations");
  carve(arena_);
  copy_to_device(slots_, slots.data(), slots.size() * sizeof(int32_t), "key rows", s_);
  copy_to_device(key_pad_, pad.data(), pad.size(), "key padding mask", s_);
  args_ = CrossAttnArgs();
  args_.L = int(L);
  args_.Nq = nq;
  args_.N = int(N);
  args_.H = heads_;
  args_.D = int(D / heads_);
  args_.scale = 1.0f / std::sqrt(float(args_.D));
  args_.q_stride = D;
  args_.k_stride = args_.v_stride = 2 * D;
  return qin16_;
}

void GpuCrossAttnBlock::run(float* Z, const float* V, int64_t nrows, float* attn) {
  VR_CHECK(L_ > 0, "cuda ", what_, ": run() without begin()");
  const int64_t D = D_, R = R_, K = L_ * N_;
  gemm_linear_forward(q16_, qin16_, in_w_->w16, in_b_->w, R, D, D, false, s_);
  // k|v of every group's rows in one GEMM: in_proj rows [D, 3D) are W_k then W_v.
  embedding_forward(rows32_, slots_, K, V, nrows, D, s_);
  convert(rows16_, rows32_, K * D, s_);
  gemm_linear_forward(kv16_, rows16_, in_w_->w16 + D * D, in_b_->w + D, K, 2 * D, D, false, s_);
  if (attn) zero(attn, size_t(R * N_) * sizeof(float), what_, s_);  // the padding columns stay 0
  cross_attention_forward(o16_, lse_, attn, q16_, kv16_, kv16_ + D, key_pad_, args_, s_);
  gemm_linear_forward(pre_, o16_, out_w_->w16, out_b_->w, R, D, D, false, s_);
  layernorm_forward(Z, mean_, rstd_, pre_, ln_w_->w, ln_b_->w, R, D, kLnEps, s_);
}

void GpuCrossAttnBlock::backward(const float* dZ, const float* dattn, float* dqin) {
  VR_CHECK(L_ > 0, "cuda ", what_, " backward: no forward pass to differentiate");
  for (const DeviceParam* p : {in_w_, in_b_, out_w_, out_b_, ln_w_, ln_b_})
    VR_CHECK(p->g, "cuda ", what_, " backward: ", p->host->name, " is frozen");
  const int64_t D = D_, R = R_, K = L_ * N_;
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
  DeviceArena scratch(size.bytes(), std::string(what_) + " backward scratch");
  carve(scratch);

  zero(dpre, size_t(R * D) * sizeof(float), what_, s_);
  layernorm_backward(dpre, ln_w_->g, ln_b_->g, dZ, pre_, ln_w_->w, mean_, rstd_, R, D, s_);
  convert(d16, dpre, R * D, s_);
  zero(dpre, size_t(R * D) * sizeof(float), what_, s_);  // now d(attention output), fp32
  gemm_linear_backward(dpre, out_w_->g, out_b_->g, d16, o16_, out_w_->w16, R, D, D, s_);
  convert(d16, dpre, R * D, s_);
  zero(dq16, size_t(R * D) * sizeof(bf16), what_, s_);
  zero(dkv16, size_t(K * 2 * D) * sizeof(bf16), what_, s_);
  cross_attention_backward(dq16, dkv16, dkv16 + D, d16, dattn, o16_, lse_, q16_, kv16_, kv16_ + D, key_pad_, args_,
                           s_);
  gemm_linear_backward(nullptr, in_w_->g + D * D, in_b_->g + D, dkv16, rows16_, in_w_->w16 + D * D, K, 2 * D, D, s_);
  gemm_linear_backward(dqin, in_w_->g, in_b_->g, dq16, qin16_, in_w_->w16, R, D, D, s_);
  device_sync(what_);  // the scratch arena is freed on return
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
