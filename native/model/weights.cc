#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"
#include "cpu/packed_weight.h"

namespace vr {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

WeightStore::WeightStore(const std::vector<TensorRecord>& records) {
  for (const TensorRecord& r : records) {
    auto it = files_.find(r.file);
    if (it == files_.end()) it = files_.emplace(r.file, MappedFile::open(r.file)).first;
    const MappedFile& f = *it->second;
    int64_t numel = 1;
    for (int64_t d : r.shape) {
      VR_CHECK(d >= 0, "tensor ", r.name, ": negative dimension in shape ", shape_str(r.shape));
      numel *= d;
    }
    VR_CHECK(uint64_t(numel) * dtype_size(r.dtype) == r.nbytes, "tensor ", r.name, ": ", r.nbytes,
             " bytes do not match shape ", shape_str(r.shape), " of ", dtype_name(r.dtype));
    VR_CHECK(r.offset <= f.size() && r.nbytes <= f.size() - r.offset, "tensor ", r.name, ": bytes [", r.offset,
             ", ", r.offset + r.nbytes, ") lie outside ", r.file, " (", f.size(), " bytes; truncated file?)");
    VR_CHECK(r.offset % dtype_size(r.dtype) == 0, "tensor ", r.name, ": offset ", r.offset,
             " is not aligned to its element size");
    VR_CHECK(!views_.count(r.name), "tensor ", r.name, " is listed twice");
    TensorView v;
    v.data = f.data() + r.offset;
    v.dtype = r.dtype;
    v.shape = r.shape;
    views_.emplace(r.name, std::move(v));
  }
}

const TensorView& WeightStore::get(const std::string& name, const std::vector<int64_t>& expect) const {
  auto it = views_.find(name);
  VR_CHECK(it != views_.end(), "checkpoint: missing tensor ", name);
  VR_CHECK(it->second.shape == expect, "checkpoint: tensor ", name, " has shape ", shape_str(it->second.shape),
           ", expected ", shape_str(expect));
  return it->second;
}

const void* WeightStore::converted(const TensorView& v, DType to) {
  if (v.dtype == to) return v.data;
  size_t n = size_t(v.numel());
  std::unique_ptr<uint8_t[]> buf(new uint8_t[n * dtype_size(to)]);
  if (to == DType::F32) convert_to_f32(reinterpret_cast<float*>(buf.get()), v.data, v.dtype, n);
  else if (to == DType::BF16) convert_to_bf16(reinterpret_cast<uint16_t*>(buf.get()), v.data, v.dtype, n);
  else fail("cannot convert weights to ", dtype_name(to));
  owned_bytes_ += n * dtype_size(to);
  owned_.push_back(std::move(buf));
  return owned_.back().get();
}

namespace {
// Drops this process's mapping of the whole pages inside [p, p + n) of a read-only file mapping: RSS falls,
// the pages stay in the page cache, and a later read faults them back in (so correctness never depends on it).
void release_mapped_pages(const void* p, size_t n) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t a = (uintptr_t(p) + page - 1) / page * page, b = (uintptr_t(p) + n) / page * page;
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}
}  // namespace

Linear WeightStore::linear(const std::string& weight, const std::string& bias, int64_t N, int64_t K,
                           DType compute, bool packable) {
  const TensorView& w = views_.count(weight) ? views_.at(weight) : get(weight, {N, K});
  VR_CHECK(w.numel() == N * K, "checkpoint: tensor ", weight, " has shape ", shape_str(w.shape), ", expected ",
           N, " x ", K, " elements");
  Linear L;
  L.dtype = compute;
  L.N = N;
  L.K = K;
  L.w = converted(w, compute);
  if (!bias.empty()) L.b = vec_f32(bias, N);
  // Packing replaces a weight used in place only: a converted copy would have to be kept as well.
  if (pack_linears_ && packable && w.dtype == compute && linear_prepack(L, release_mapped_pages))
    packed_bytes_ += L.packed->bytes;
  return L;
}

const float* WeightStore::vec_f32(const std::string& name, int64_t n) {
  const TensorView& v = get(name, {n});
  return static_cast<const float*>(converted(v, DType::F32));
}

uint64_t WeightStore::mapped_bytes() const {
  uint64_t s = 0;
  for (auto& kv : files_) s += kv.second->size();
  return s;
}

}  // namespace vr
