#include "train/param_store.h"

#include <algorithm>

#include "core/error.h"
#include "model/weights.h"

namespace vr {

ParamStore::ParamStore(DType compute) : compute_(compute) {
  VR_CHECK(compute == DType::F32 || compute == DType::BF16, "trainer: compute dtype must be fp32 or bf16");
}

Param* ParamStore::add(const std::string& name, std::vector<int64_t> shape, bool trainable, bool gemm) {
  VR_CHECK(!allocated_, "ParamStore::add(", name, ") after allocate()");
  VR_CHECK(!find(name), "trainer: parameter ", name, " declared twice");
  auto p = std::make_unique<Param>();
  p->name = name;
  p->shape = std::move(shape);
  p->numel = 1;
  for (int64_t d : p->shape) {
    VR_CHECK(d > 0, "trainer: parameter ", name, " has a non-positive dimension");
    p->numel *= d;
  }
  p->trainable = trainable;
  p->decay = trainable && p->shape.size() >= 2;
  p->gemm = gemm;
  params_.push_back(std::move(p));
  return params_.back().get();
}

void ParamStore::allocate(HostStorage what) {
  VR_CHECK(!allocated_, "ParamStore::allocate() called twice");
  storage_ = what;
  size_t nw = 0, ng = 0, n16 = 0;
  for (auto& p : params_) {
    nw += size_t(p->numel);
    if (p->trainable) ng += size_t(p->numel);
    if (p->gemm && compute_ == DType::BF16) n16 += size_t(p->numel);
  }
  trainable_numel_ = int64_t(ng);
  w_.assign(nw, 0.f);
  g_.assign(what.grads ? ng : 0, 0.f);
  m_.assign(what.moments ? ng : 0, 0.f);
  v_.assign(what.moments ? ng : 0, 0.f);
  w16_.assign(n16, 0);
  size_t ow = 0, og = 0, o16 = 0;
  for (auto& p : params_) {
    p->w = w_.data() + ow;
    ow += size_t(p->numel);
    if (p->trainable) {
      if (what.grads) p->g = g_.data() + og;
      if (what.moments) p->m = m_.data() + og, p->v = v_.data() + og;
      og += size_t(p->numel);
    }
    if (p->gemm && compute_ == DType::BF16) {
      p->w16 = w16_.data() + o16;
      o16 += size_t(p->numel);
    }
  }
  allocated_ = true;
}

Param* ParamStore::find(const std::string& name) const {
  for (auto& p : params_)
    if (p->name == name) return p.get();
  return nullptr;
}

Param& ParamStore::get(const std::string& name) const {
  Param* p = find(name);
  VR_CHECK(p, "trainer: unknown parameter ", name);
  return *p;
}

Linear ParamStore::linear(const Param& w, const Param* bias) const {
  VR_CHECK(w.shape.size() == 2, "trainer: ", w.name, " is not a matrix");
  Linear L;
  L.dtype = compute_;
  L.N = w.shape[0];
  L.K = w.shape[1];
  L.w = compute_ == DType::BF16 ? static_cast<const void*>(w.w16) : static_cast<const void*>(w.w);
  VR_CHECK(L.w, "trainer: ", w.name, " has no weights in the compute precision");
  if (bias) {
    VR_CHECK(bias->numel == L.N, "trainer: bias ", bias->name, " does not match ", w.name);
    L.b = bias->w;
  }
  return L;
}

void ParamStore::refresh_shadows() {
  if (compute_ != DType::BF16) return;
  for (auto& p : params_)
    if (p->w16) convert_to_bf16(p->w16, p->w, DType::F32, size_t(p->numel));
}

void ParamStore::zero_grad() {
  std::fill(g_.begin(), g_.end(), 0.f);
  for (auto& p : params_) p->grad_zero = true;
}

void ParamStore::mark_grads_written() {
  for (auto& p : params_) p->grad_zero = false;
}

int64_t ParamStore::trainable_numel() const { return trainable_numel_; }

uint64_t ParamStore::bytes() const {
  return (w_.size() + g_.size() + m_.size() + v_.size()) * sizeof(float) + w16_.size() * sizeof(uint16_t);
}

}  // namespace vr
