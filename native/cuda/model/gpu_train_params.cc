#include "cuda/model/gpu_train_params.h"

#include <cmath>
#include <map>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/gpu_train_kernels.h"
#include "cuda/model/model_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

// Every group of tensors (a lone tensor or a fused group) starts on a 128-element boundary: 512 bytes of fp32,
// 256 of bf16, so each is a vector-load / GEMM-operand aligned start.
constexpr int64_t kAlignElems = 128;
int64_t align_elems(int64_t n) { return (n + kAlignElems - 1) / kAlignElems * kAlignElems; }

void zero(void* p, size_t bytes, const char* what, Stream s) {
  if (bytes == 0) return;
  const cudaError_t e = cudaMemsetAsync(p, 0, bytes, s);
  VR_CHECK(e == cudaSuccess, "cuda: clearing ", what, " failed: ", cudaGetErrorString(e));
}

}  // namespace

OptimizerPlacement optimizer_placement_from_name(const std::string& name) {
  if (name == "gpu") return OptimizerPlacement::Gpu;
  if (name == "host") return OptimizerPlacement::Host;
  if (name == "gpu-8bit") return OptimizerPlacement::Gpu8bit;
  fail("optimizer states: unknown placement '", name, "' (gpu, host or gpu-8bit)");
}

const char* optimizer_placement_name(OptimizerPlacement p) {
  switch (p) {
    case OptimizerPlacement::Gpu: return "gpu";
    case OptimizerPlacement::Host: return "host";
    case OptimizerPlacement::Gpu8bit: return "gpu-8bit";
  }
  return "?";
}

GpuTrainParams::GpuTrainParams(ParamStore& ps, OptimizerPlacement where, const GpuParamLayout& layout, Stream s)
    : ps_(ps), where_(where), s_(s) {
  VR_CHECK(where != OptimizerPlacement::Gpu8bit,
           "cuda trainer: --optimizer-states gpu-8bit is not implemented yet (use gpu or host)");
  VR_CHECK(ps.allocated(), "cuda trainer: the parameter store must be allocated before the device copy");
  const auto& host = ps.all();
  const size_t n = host.size();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < n; i++) index[host[i]->name] = i;
  auto idx = [&](const std::string& name) {
    auto it = index.find(name);
    VR_CHECK(it != index.end(), "cuda trainer: layout names unknown parameter ", name);
    return it->second;
  };

  // Slots: a fused group where its first member is declared, every other tensor alone, in declaration order.
  std::vector<int> group_of(n, -1);
  for (size_t gi = 0; gi < layout.fused.size(); gi++)
    for (const std::string& name : layout.fused[gi]) {
      const size_t i = idx(name);
      VR_CHECK(group_of[i] < 0, "cuda trainer: ", name, " is in two fused groups");
      group_of[i] = int(gi);
    }
  std::vector<std::vector<size_t>> slots;
  std::vector<bool> placed(layout.fused.size(), false);
  for (size_t i = 0; i < n; i++) {
    const int gi = group_of[i];
    if (gi < 0) {
      slots.push_back({i});
    } else if (!placed[size_t(gi)]) {
      placed[size_t(gi)] = true;
      std::vector<size_t> slot;
      for (const std::string& name : layout.fused[size_t(gi)]) slot.push_back(idx(name));
      slots.push_back(slot);
    }
  }
  std::vector<bool> f32_wanted(n, false);
  for (const std::string& name : layout.f32_on_device) f32_wanted[idx(name)] = true;

  // Which storages a tensor has; a fused group's members must agree (they are read as one operand).
  auto has_w32 = [&](const Param& p, size_t i) {
    return where == OptimizerPlacement::Gpu || !p.gemm || f32_wanted[i];
  };
  auto has_grad = [](const Param& p, size_t) { return p.trainable; };
  auto has_moments = [&](const Param& p, size_t) { return p.trainable && where == OptimizerPlacement::Gpu; };
  auto has_w16 = [](const Param& p, size_t) { return p.gemm; };
  // Element offsets of one storage kind (-1: absent) and its total size.
  auto offsets = [&](auto pred, int64_t* total) {
    std::vector<int64_t> off(n, -1);
    int64_t o = 0;
    for (const auto& slot : slots) {
      const bool first = pred(*host[slot[0]], slot[0]);
      for (size_t i : slot)
        VR_CHECK(pred(*host[i], i) == first, "cuda trainer: fused tensors ", host[slot[0]]->name, " and ",
                 host[i]->name, " differ in storage (trainable / GEMM / fp32 copy)");
      if (!first) continue;
      o = align_elems(o);
      for (size_t i : slot) {
        off[i] = o;
        o += host[i]->numel;
      }
    }
    *total = align_elems(o);
    return off;
  };
  int64_t n32 = 0, ng = 0, nm = 0, n16 = 0;
  const std::vector<int64_t> o32 = offsets(has_w32, &n32), og = offsets(has_grad, &ng),
                             om = offsets(has_moments, &nm), o16 = offsets(has_w16, &n16);

  auto carve = [&](auto& a, float*& w32, float*& g, float*& m, float*& v, bf16*& w16) {
    norm_partials_ = a.template take<double>(kSumSquaresBlocks);
    w32 = a.template take<float>(n32);
    g = a.template take<float>(ng);
    m = a.template take<float>(nm);
    v = a.template take<float>(nm);
    w16 = a.template take<bf16>(n16);
  };
  float *w32 = nullptr, *g = nullptr, *m = nullptr, *v = nullptr;
  bf16* w16 = nullptr;
  ArenaSizer size;
  carve(size, w32, g, m, v, w16);
  arena_ = DeviceArena(size.bytes(), std::string("training parameters (optimizer states ") +
                                         optimizer_placement_name(where) + ")");
  carve(arena_, w32, g, m, v, w16);
  grads_ = g;
  grad_numel_ = ng;

  params_.resize(n);
  for (size_t i = 0; i < n; i++) {
    DeviceParam& d = params_[i];
    d.host = host[i].get();
    if (o32[i] >= 0) d.w = w32 + o32[i];
    if (og[i] >= 0) d.g = g + og[i];
    if (om[i] >= 0) d.m = m + om[i], d.v = v + om[i];
    if (o16[i] >= 0) d.w16 = w16 + o16[i];
  }
  zero(m, size_t(nm) * sizeof(float), "AdamW moments", s_);
  zero(v, size_t(nm) * sizeof(float), "AdamW moments", s_);
  zero_grad();
}

const DeviceParam* GpuTrainParams::find(const std::string& name) const {
  for (const DeviceParam& d : params_)
    if (d.host->name == name) return &d;
  return nullptr;
}

const DeviceParam& GpuTrainParams::get(const std::string& name) const {
  const DeviceParam* d = find(name);
  VR_CHECK(d, "cuda trainer: unknown parameter ", name);
  return *d;
}

void GpuTrainParams::upload(bool trainable_only) {
  std::vector<uint16_t> staging;
  for (const DeviceParam& d : params_) {
    const Param& p = *d.host;
    if (trainable_only && !p.trainable) continue;
    const size_t bytes = size_t(p.numel) * sizeof(float);
    if (d.w) copy_to_device(d.w, p.w, bytes, p.name.c_str(), s_);
    if (d.m) {
      copy_to_device(d.m, p.m, bytes, "AdamW exp_avg", s_);
      copy_to_device(d.v, p.v, bytes, "AdamW exp_avg_sq", s_);
    }
    if (!d.w16) continue;
    if (d.w) {
      convert(d.w16, d.w, p.numel, s_);  // round to nearest even on the device: the host's f32_to_bf16
    } else {
      staging.resize(size_t(p.numel));
      convert_to_bf16(staging.data(), p.w, DType::F32, size_t(p.numel));
      copy_to_device(d.w16, staging.data(), size_t(p.numel) * sizeof(uint16_t), p.name.c_str(), s_);
    }
  }
}

void GpuTrainParams::download() {
  if (where_ == OptimizerPlacement::Host) return;
  for (const DeviceParam& d : params_) {
    const Param& p = *d.host;
    const size_t bytes = size_t(p.numel) * sizeof(float);
    copy_to_host(p.w, d.w, bytes, p.name.c_str(), s_);
    if (d.m) {
      copy_to_host(p.m, d.m, bytes, "AdamW exp_avg", s_);
      copy_to_host(p.v, d.v, bytes, "AdamW exp_avg_sq", s_);
    }
  }
  ps_.refresh_shadows();
}

void GpuTrainParams::download_grads() {
  for (const DeviceParam& d : params_)
    if (d.g) copy_to_host(d.host->g, d.g, size_t(d.host->numel) * sizeof(float), d.host->name.c_str(), s_);
  ps_.mark_grads_written();
}

void GpuTrainParams::zero_grad() {
  zero(grads_, size_t(grad_numel_) * sizeof(float), "gradients", s_);
  grads_on_host_ = false;
}

double GpuTrainParams::grad_norm() {
  if (where_ == OptimizerPlacement::Host) {
    download_grads();
    grads_on_host_ = true;
    return grad_global_norm(ps_);
  }
  sum_squares_partials(norm_partials_, grads_, grad_numel_, s_);  // padding between tensors is zero: adds nothing
  std::vector<double> host(kSumSquaresBlocks);
  copy_to_host(host.data(), norm_partials_, host.size() * sizeof(double), "gradient norm", s_);
  double total = 0;
  for (double x : host) total += x;
  return std::sqrt(total);
}

void GpuTrainParams::step(const vr::AdamWConfig& cfg, double lr, int64_t step, float grad_scale) {
  VR_CHECK(step >= 1, "AdamW: step count must start at 1");
  VR_CHECK(std::isfinite(lr) && lr >= 0, "AdamW: learning rate must be a finite non-negative number, got ", lr);
  if (where_ == OptimizerPlacement::Host) {
    if (!grads_on_host_) download_grads();
    adamw_update(ps_, cfg, lr, step, grad_scale, /*zero_grads=*/true);
    upload(/*trainable_only=*/true);
    zero_grad();
    return;
  }
  for (const DeviceParam& d : params_) {
    if (!d.g) continue;
    AdamWConfig c;  // the kernel's: the same doubles, its fp32 scalars derived as the CPU's
    c.lr = lr;
    c.beta1 = cfg.beta1;
    c.beta2 = cfg.beta2;
    c.eps = cfg.eps;
    c.weight_decay = d.host->decay ? cfg.weight_decay : 0.0;
    c.step = step;
    c.grad_scale = grad_scale;
    adamw_step(d.w, d.m, d.v, d.g, d.host->numel, c, d.w16, s_);
  }
  zero_grad();
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
