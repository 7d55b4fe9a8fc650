// Checkpoint tensors as the engine sees them: mmapped safetensors files (zero copy) plus the converted copies
// that a precision change needs. TypeScript resolves names, shards and expected shapes
// (src/model/checkpoint.ts); this store re-checks every byte range against the file before touching it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mmap_file.h"
#include "ops/linear.h"

namespace vr {

struct TensorRecord {
  std::string name;
  std::string file;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

class WeightStore {
 public:
  // Maps every file once and validates each record (range inside the file, nbytes == numel * dtype size,
  // alignment of the element type).
  explicit WeightStore(const std::vector<TensorRecord>& records);

  bool has(const std::string& name) const { return views_.count(name) != 0; }
  // The raw tensor; throws naming the tensor when missing or when its shape differs from `expect`.
  const TensorView& get(const std::string& name, const std::vector<int64_t>& expect) const;
  // A Linear in the compute precision (F32 or BF16). Weights already in that dtype are used in place
  // (zero copy); others are converted once. The bias, when named, becomes fp32.
  // With packing on (inference sessions) and `packable`, a BF16 weight used in place is packed for the GEMMs
  // (linear_prepack) and its mmapped pages are released, so the packed copy replaces them in memory. Pass
  // packable=false for a tensor that is also read another way (a tied embedding).
  Linear linear(const std::string& weight, const std::string& bias, int64_t N, int64_t K, DType compute,
                bool packable = true);
  // Inference sessions turn packing on before building the towers; training never does (it reads and
  // updates the plain layout).
  void set_pack_linears(bool on) { pack_linears_ = on; }
  uint64_t packed_bytes() const { return packed_bytes_; }
  // A fp32 vector (norm weights, biases), converted when needed.
  const float* vec_f32(const std::string& name, int64_t n);
  // Bytes mapped from files and bytes of converted copies (for memory reports).
  uint64_t mapped_bytes() const;
  uint64_t owned_bytes() const { return owned_bytes_; }

 private:
  const void* converted(const TensorView& v, DType to);
  std::map<std::string, std::shared_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> views_;
  std::vector<std::unique_ptr<uint8_t[]>> owned_;
  uint64_t owned_bytes_ = 0;
  bool pack_linears_ = false;
  uint64_t packed_bytes_ = 0;
};

std::string shape_str(const std::vector<int64_t>& s);

}  // namespace vr
