// A bf16 Linear weight W[N,K] reordered ONCE (inference sessions only) into the blocked layout the bf16 GEMM
// reads natively, so prefill GEMMs skip oneDNN's per-call weight handling of the plain [N,K] ("ba") view and
// the decode GEMV streams the same copy. The copy lives in 64-byte aligned anonymous memory; the caller
// releases the source pages (the mmapped checkpoint), so resident memory stays ~ the weights.
//
// Layout: whatever oneDNN's matmul picks for format_tag::any on this CPU (queried, never assumed). When it is
// BA16a64b2a (AVX-512-BF16 brgemm) `vnni64` is set and the element (k, n) lies at
//   (n / 64) * n_block_stride + (k / 32) * 2048 + ((k % 32) / 2) * 128 + (n % 64) * 2 + k % 2
// with K padded to k_pad (a multiple of 32) and N to n_pad (a multiple of 64), padding zero-filled. That is
// the layout gemv_bf16_packed reads: per 64-column panel, contiguous 4 KiB blocks of 32 k x 64 n in k-pairs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace vr::cpu {

struct PackedWeight {
  int64_t N = 0, K = 0;
  void* data = nullptr;  // owned, 64-byte aligned
  size_t bytes = 0;
  bool vnni64 = false;   // layout BA16a64b2a as described above
  int64_t k_pad = 0, n_pad = 0, n_block_stride = 0;  // set when vnni64
  std::shared_ptr<void> desc;  // the oneDNN memory descriptor of `data` (opaque here)
  PackedWeight() = default;
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;
  ~PackedWeight();
};

// Packs W[N,K] (bf16 bits, row-major). Returns null when oneDNN is not built in (nothing to pack for).
// `consumed(p, bytes)`, when given, is called for source ranges that packing no longer reads (whole row groups
// of W, in order), so the caller can release them while a large weight is still being packed: resident memory
// then peaks at the packed copy plus one row group, not plus the whole source.
using ConsumedFn = void (*)(const void* p, size_t bytes);
std::shared_ptr<const PackedWeight> pack_bf16_weight(const uint16_t* W, int64_t N, int64_t K,
                                                     ConsumedFn consumed = nullptr);

// Whether inference sessions pack their bf16 Linear weights: VREFLECT_PACK_WEIGHTS=0 turns it off (default on
// when oneDNN is built in).
bool weight_packing_enabled();

}  // namespace vr::cpu
