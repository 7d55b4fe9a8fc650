#include "cuda/model/gpu_train_params.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/gpu_train_kernels.h"
#include "cuda/model/model_kernels.h"
#include "core/parallel.h"

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

void ok(cudaError_t e, const char* what) {
  VR_CHECK(e == cudaSuccess, "cuda trainer: ", what, " failed: ", cudaGetErrorString(e));
}

// An asynchronous copy on stream s (the host side is pinned staging, or pageable memory after a failed pin, where
// the runtime makes it synchronous).
void copy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, Stream s, const char* what) {
  if (bytes) ok(cudaMemcpyAsync(dst, src, bytes, kind, s), what);
}

}  // namespace

OptimizerPlacement optimizer_placement_from_name(const std::string& name) {
  if (name == "gpu") return OptimizerPlacement::Gpu;
  if (name == "host") return OptimizerPlacement::Host;
  fail("optimizer states: unknown placement '", name, "' (gpu or host)");
}

const char* optimizer_placement_name(OptimizerPlacement p) {
  switch (p) {
    case OptimizerPlacement::Gpu: return "gpu";
    case OptimizerPlacement::Host: return "host";
  }
  return "?";
}

HostStorage host_storage(OptimizerPlacement p) {
  HostStorage h;
  h.grads = false;
  h.moments = p == OptimizerPlacement::Host;
  return h;
}

GpuTrainParams::GpuTrainParams(ParamStore& ps, OptimizerPlacement where, const GpuParamLayout& layout, Stream s,
                               int64_t chunk_elems)
    : ps_(ps), where_(where), s_(s) {
  VR_CHECK(ps.allocated(), "cuda trainer: the parameter store must be allocated before the device copy");
  VR_CHECK(where != OptimizerPlacement::Host || ps.storage().moments,
           "cuda trainer: the host optimizer placement needs a parameter store with host AdamW moments");
  VR_CHECK(chunk_elems >= 1, "cuda trainer: the streaming chunk must hold at least one value");
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
    index_[d.host] = i;
    if (o32[i] >= 0) d.w = w32 + o32[i];
    if (og[i] >= 0) d.g = g + og[i];
    if (om[i] >= 0) d.m = m + om[i], d.v = v + om[i];
    if (o16[i] >= 0) d.w16 = w16 + o16[i];
  }
  zero(m, size_t(nm) * sizeof(float), "AdamW moments", s_);
  zero(v, size_t(nm) * sizeof(float), "AdamW moments", s_);
  zero_grad();
  if (where != OptimizerPlacement::Host) return;

  // The host step's chunks: the trainable tensors' values in declaration order, cut every chunk values.
  int64_t total = 0;
  for (size_t i = 0; i < n; i++)
    if (host[i]->trainable) total += host[i]->numel;
  chunk_ = std::min(chunk_elems, std::max<int64_t>(total, 1));
  int64_t filled = 0;  // values in the current chunk
  for (size_t i = 0; i < n; i++) {
    if (!host[i]->trainable) continue;
    for (int64_t o = 0; o < host[i]->numel;) {
      if (filled == 0) chunk_first_.push_back(pieces_.size());
      const int64_t take = std::min(host[i]->numel - o, chunk_ - filled);
      pieces_.push_back({i, o, take, filled});
      o += take;
      filled = filled + take == chunk_ ? 0 : filled + take;
    }
  }
  chunk_first_.push_back(pieces_.size());
  staging_ = PinnedBuffer(2 * slot_bytes(), "the host optimizer's gradient / weight staging");
  ok(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking), "creating the copy stream");
  for (CUevent_st** e : {&grads_ready_, &downloaded_[0], &downloaded_[1], &uploaded_})
    ok(cudaEventCreateWithFlags(e, cudaEventDisableTiming), "creating an event");
}

GpuTrainParams::~GpuTrainParams() {
  if (copy_) cudaStreamSynchronize(copy_);  // no copy may still read or write the staging being freed
  for (CUevent_st* e : {grads_ready_, downloaded_[0], downloaded_[1], uploaded_})
    if (e) cudaEventDestroy(e);
  if (copy_) cudaStreamDestroy(copy_);
}

const DeviceParam& GpuTrainParams::of(const Param& p) const {
  auto it = index_.find(&p);
  VR_CHECK(it != index_.end(), "cuda trainer: ", p.name, " is not a tensor of this trainer");
  return params_[it->second];
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

void GpuTrainParams::upload() {
  for (const DeviceParam& d : params_) {
    const Param& p = *d.host;
    write_state(p, StateField::Weights, p.w);
    if (d.m && p.m) {
      write_state(p, StateField::ExpAvg, p.m);
      write_state(p, StateField::ExpAvgSq, p.v);
    }
  }
}

void GpuTrainParams::download() {
  if (where_ == OptimizerPlacement::Host) return;
  for (const DeviceParam& d : params_) {
    const Param& p = *d.host;
    const size_t bytes = size_t(p.numel) * sizeof(float);
    copy_to_host(p.w, d.w, bytes, p.name.c_str(), s_);
    if (d.m && p.m) {
      copy_to_host(p.m, d.m, bytes, "AdamW exp_avg", s_);
      copy_to_host(p.v, d.v, bytes, "AdamW exp_avg_sq", s_);
    }
  }
  ps_.refresh_shadows();
}

void GpuTrainParams::read_state(const Param& p, StateField f, int64_t offset, int64_t n, float* dst) const {
  const DeviceParam& d = of(p);
  VR_CHECK(offset >= 0 && n >= 0 && offset + n <= p.numel, "cuda trainer: read past the end of ", p.name);
  VR_CHECK(f == StateField::Weights || p.trainable, "cuda trainer: ", p.name, " is frozen and has no AdamW moments");
  const size_t bytes = size_t(n) * sizeof(float);
  if (where_ == OptimizerPlacement::Host) {  // the host holds the master and the moments
    const float* src = f == StateField::Weights ? p.w : f == StateField::ExpAvg ? p.m : p.v;
    std::memcpy(dst, src + offset, bytes);
    return;
  }
  const float* src = f == StateField::Weights ? d.w : f == StateField::ExpAvg ? d.m : d.v;
  copy_to_host(dst, src + offset, bytes, p.name.c_str(), s_);
}

void GpuTrainParams::write_state(const Param& p, StateField f, const float* src) {
  const DeviceParam& d = of(p);
  const size_t bytes = size_t(p.numel) * sizeof(float);
  Param& hp = const_cast<Param&>(p);  // ps_ owns it mutably; `of` proved it is one of ps_'s
  if (f != StateField::Weights) {
    VR_CHECK(p.trainable, "cuda trainer: ", p.name, " is frozen and has no AdamW moments");
    float* host = f == StateField::ExpAvg ? hp.m : hp.v;
    if (host && host != src) std::memcpy(host, src, bytes);
    if (where_ == OptimizerPlacement::Gpu)
      copy_to_device(f == StateField::ExpAvg ? d.m : d.v, src, bytes, "AdamW moments", s_);
    return;
  }
  if (hp.w != src) std::memcpy(hp.w, src, bytes);
  if (hp.w16) convert_to_bf16(hp.w16, hp.w, DType::F32, size_t(p.numel));  // a bf16-compute store's own shadow
  if (d.w) copy_to_device(d.w, src, bytes, p.name.c_str(), s_);
  if (!d.w16) return;
  if (d.w) {
    convert(d.w16, d.w, p.numel, s_);  // round to nearest even on the device: the host's f32_to_bf16
  } else {
    // Rounded on the host in pieces (16 Mi values, 32 MiB), so lm_head (1.1 GB of bf16 for the 7B) needs no
    // tensor-sized buffer; copy_to_device has read each piece when it returns.
    constexpr int64_t kPiece = int64_t(1) << 24;
    std::vector<uint16_t> piece(size_t(std::min(kPiece, p.numel)));
    for (int64_t o = 0; o < p.numel; o += kPiece) {
      const int64_t n = std::min(kPiece, p.numel - o);
      convert_to_bf16(piece.data(), src + o, DType::F32, size_t(n));
      copy_to_device(d.w16 + o, piece.data(), size_t(n) * sizeof(uint16_t), p.name.c_str(), s_);
    }
  }
}

void GpuTrainParams::download_grads() {
  for (const DeviceParam& d : params_) {
    if (!d.g) continue;
    VR_CHECK(d.host->g, "cuda trainer: ", d.host->name, " has no host gradient array to download into");
    read_grad(*d.host, d.host->g);
  }
  ps_.mark_grads_written();
}

void GpuTrainParams::read_grad(const Param& p, float* dst) const {
  const DeviceParam& d = of(p);
  VR_CHECK(d.g, "cuda trainer: ", p.name, " is frozen and has no gradient");
  copy_to_host(dst, d.g, size_t(p.numel) * sizeof(float), p.name.c_str(), s_);
}

void GpuTrainParams::zero_grad() {
  zero(grads_, size_t(grad_numel_) * sizeof(float), "gradients", s_);
}

double GpuTrainParams::grad_norm() {
  sum_squares_partials(norm_partials_, grads_, grad_numel_, s_);  // padding between tensors is zero: adds nothing
  std::vector<double> host(kSumSquaresBlocks);
  copy_to_host(host.data(), norm_partials_, host.size() * sizeof(double), "gradient norm", s_);
  double total = 0;
  for (double x : host) total += x;
  return std::sqrt(total);
}

void GpuTrainParams::download_chunk(size_t c) {
  const size_t slot = c % 2;
  float* g = slot_f32(slot);
  for (size_t i = chunk_first_[c]; i < chunk_first_[c + 1]; i++) {
    const Piece& pc = pieces_[i];
    copy_async(g + pc.slot_off, params_[pc.param].g + pc.offset, size_t(pc.n) * sizeof(float),
               cudaMemcpyDeviceToHost, copy_, "downloading a gradient chunk");
  }
  ok(cudaEventRecord(downloaded_[slot], copy_), "recording a download");
}

// The host placement's step, streamed (see the top of gpu_train_params.h). One copy stream keeps every copy in
// issue order, which is what makes reusing a slot safe: chunk c + 2's download into slot c % 2 is issued after
// chunk c's uploads from it, so it starts when they are done; the CPU writes a slot only after waiting for the
// download into it.
void GpuTrainParams::host_step(const AdamWStep& k) {
  const size_t chunks = chunk_first_.size() - 1;
  ok(cudaEventRecord(grads_ready_, s_), "recording the end of the backward");
  ok(cudaStreamWaitEvent(copy_, grads_ready_, 0), "ordering the gradient download");
  for (size_t c = 0; c < std::min<size_t>(2, chunks); c++) download_chunk(c);
  apply_num_threads();
  for (size_t c = 0; c < chunks; c++) {
    const size_t slot = c % 2;
    ok(cudaEventSynchronize(downloaded_[slot]), "downloading a gradient chunk");
    float* g = slot_f32(slot);
    uint16_t* b16 = slot_bf16(slot);
    for (size_t i = chunk_first_[c]; i < chunk_first_[c + 1]; i++) {
      const Piece& pc = pieces_[i];
      const DeviceParam& d = params_[pc.param];
      Param& p = *ps_.all()[pc.param];
      float* gs = g + pc.slot_off;
      adamw_range(k, p.decay, p.w + pc.offset, gs, p.m + pc.offset, p.v + pc.offset,
                  d.w16 ? b16 + pc.slot_off : nullptr, pc.n, /*zero_g=*/false);
      // The gradient is consumed: its place in the slot takes the new fp32 values the device keeps a copy of.
      if (d.w) std::memcpy(gs, p.w + pc.offset, size_t(pc.n) * sizeof(float));
    }
    for (size_t i = chunk_first_[c]; i < chunk_first_[c + 1]; i++) {
      const Piece& pc = pieces_[i];
      const DeviceParam& d = params_[pc.param];
      if (d.w16)
        copy_async(d.w16 + pc.offset, b16 + pc.slot_off, size_t(pc.n) * sizeof(uint16_t), cudaMemcpyHostToDevice,
                   copy_, "uploading new bf16 weights");
      if (d.w)
        copy_async(d.w + pc.offset, g + pc.slot_off, size_t(pc.n) * sizeof(float), cudaMemcpyHostToDevice, copy_,
                   "uploading new fp32 weights");
    }
    if (c + 2 < chunks) download_chunk(c + 2);
  }
  // The next forward and the gradient reset wait for the last upload (and so for every download).
  ok(cudaEventRecord(uploaded_, copy_), "recording the weight upload");
  ok(cudaStreamWaitEvent(s_, uploaded_, 0), "ordering the weight upload");
}

void GpuTrainParams::step(const vr::AdamWConfig& cfg, double lr, int64_t step, float grad_scale) {
  const AdamWStep k = adamw_step_scalars(cfg, lr, step, grad_scale);  // checks step and lr
  if (where_ == OptimizerPlacement::Host) {
    host_step(k);
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
