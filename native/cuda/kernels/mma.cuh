// Tensor-core building blocks shared by the GEMM (gemm.cu) and the flash attention (attention_tc.cu; the decode
// attention borrows its 16-byte loads):
// mma.sync.m16n8k16 bf16 -> fp32, its fragment layout, bf16 pair packing and aligned 16-byte / 4-byte moves.
//
// VR_MMA_AVAILABLE is defined where the instruction can run: sm_80+ GPUs (inline PTX) and the CPU emulator, where
// mma_bf16_16816 is MODELLED in C++ from the PTX ISA's fragment layout, so everything around it (tile loads, warp
// tiling, softmax in fragments, epilogues) is tested without a GPU; so is ldmatrix (x4, plain and .trans), modelled
// the same way and checked against the 4-byte fragment loads (mma_probe.cu), and cp.async (a late-landing model,
// below). The PTX itself only runs on a GPU.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/kernels/common.cuh"

#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || defined(VR_CUDA_EMULATED)
#define VR_MMA_AVAILABLE 1
#endif

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
namespace mma {

// Vector moves (16-byte, bf16-pair) of registers to / from memory. On the GPU they are plain vector accesses; g++
// (the emulator) would treat them as strict-aliasing violations and may reorder them, so there they go through
// memcpy. A vector access at an address that is not a multiple of its size faults on the GPU ("misaligned
// address") while memcpy never does, so the emulator checks the alignment and aborts with the address, as ldmatrix
// and cp.async below do.
#if defined(VR_CUDA_EMULATED)
__device__ __forceinline__ void check_vector_alignment(const void* p, size_t bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) {
    std::fprintf(stderr, "cuda_emu: %s address %p is not %zu-byte aligned (a misaligned address fault on a GPU)\n",
                 what, p, bytes);
    std::abort();
  }
}
#endif
template <class V>
__device__ __forceinline__ V vector_load(const void* p, const char* what) {
#if defined(VR_CUDA_EMULATED)
  check_vector_alignment(p, sizeof(V), what);
  static_assert(sizeof(V) == 16 || sizeof(V) == 4, "bank accounting knows 16- and 4-byte loads");
  if (cudaemu::banks::on())  // counted when p is shared memory (ld.shared.v4 / .b32)
    cudaemu::record_shared_access(sizeof(V) == 16 ? cudaemu::banks::Op::Load16 : cudaemu::banks::Op::Load4, p);
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
#else
  (void)what;
  return *reinterpret_cast<const V*>(p);
#endif
}
template <class V>
__device__ __forceinline__ void vector_store(void* p, const V& v, const char* what) {
#if defined(VR_CUDA_EMULATED)
  check_vector_alignment(p, sizeof(V), what);
  static_assert(sizeof(V) == 16, "bank accounting knows 16-byte stores");
  if (cudaemu::banks::on()) cudaemu::record_shared_access(cudaemu::banks::Op::Store16, p);  // st.shared.v4
  std::memcpy(p, &v, sizeof v);
#else
  (void)what;
  *reinterpret_cast<V*>(p) = v;
#endif
}
// One bf16 to shared memory: a plain store, through this helper only so that the emulator's bank accounting sees
// it (it cannot see plain C++ stores; gemm.cu's scattered tile stores use it).
__device__ __forceinline__ void store_b16(__nv_bfloat16* p, __nv_bfloat16 v) {
#if defined(VR_CUDA_EMULATED)
  if (cudaemu::banks::on()) cudaemu::record_shared_access(cudaemu::banks::Op::Store2, p);  // st.shared.b16
#endif
  *p = v;
}
__device__ __forceinline__ uint4 load16(const __nv_bfloat16* p) { return vector_load<uint4>(p, "16-byte load"); }
__device__ __forceinline__ void store16(__nv_bfloat16* p, const uint4& v) { vector_store(p, v, "16-byte store"); }
// Two consecutive bf16 (4-byte aligned) as one register: element 0 in the low half.
__device__ __forceinline__ uint32_t ld_pair(const __nv_bfloat16* p) {
  return vector_load<uint32_t>(p, "bf16-pair load");
}
// A 32-bit pattern as the float it encodes; bf16 -> fp32 is `f32_from_bits(uint32_t(bits) << 16)`.
__device__ __forceinline__ float f32_from_bits(uint32_t b) {
#if defined(VR_CUDA_EMULATED)
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
#else
  return __uint_as_float(b);
#endif
}
__device__ __forceinline__ __nv_bfloat16 bf16_from_bits(uint16_t bits) {
  __nv_bfloat16_raw raw;
  raw.x = bits;
  return __nv_bfloat16(raw);
}
__device__ __forceinline__ uint16_t bf16_bits(__nv_bfloat16 x) {
  const __nv_bfloat16_raw raw = x;
  return raw.x;
}
// (lo, hi) rounded to nearest even bf16 and packed as an A/B fragment register: lo is the lower column / row.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  return uint32_t(bf16_bits(__float2bfloat16(lo))) | (uint32_t(bf16_bits(__float2bfloat16(hi))) << 16);
}

#if defined(VR_MMA_AVAILABLE)
// D += A B for one 16 x 8 x 16 tile, A row-major 16 x 16, B "col" (k-major per column) 16 x 8. Fragment layouts
// (PTX ISA, "mma.m16n8k16" for .bf16), g = lane / 4, t = lane % 4, each register a bf16 pair (lower index low):
//   a0..a3 = A[g][2t..2t+1], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]
//   b0, b1 = B[2t..2t+1][g], B[2t+8..2t+9][g]
//   d0..d3 = D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]
// All 32 lanes of the warp must call it together (as on the GPU: .sync.aligned). Blocks of up to 1024 threads.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(VR_CUDA_EMULATED)
  // The warp's fragments go through shared memory; each lane then computes its four outputs (fp32 sums of exact
  // bf16 products; the hardware's summation order is unspecified, so tests compare with tolerances).
  __shared__ uint32_t fa[32][32][4], fb[32][32][2];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; i++) fa[w][lane][i] = a[i];
  for (int i = 0; i < 2; i++) fb[w][lane][i] = b[i];
  __syncwarp();
  auto half = [](uint32_t reg, int hi) { return __bfloat162float(bf16_from_bits(uint16_t(hi ? reg >> 16 : reg))); };
  // A[r][kk] sits in lane 4 (r % 8) + (kk % 8) / 2, register (r >= 8) + 2 (kk >= 8), half kk % 2;
  // B[kk][n] in lane 4 n + (kk % 8) / 2, register (kk >= 8), half kk % 2.
  for (int e = 0; e < 4; e++) {
    const int r = g + (e >= 2 ? 8 : 0), n = 2 * t + (e & 1);
    float sum = 0.f;
    for (int kk = 0; kk < 16; kk++) {
      const float av = half(fa[w][4 * (r % 8) + (kk % 8) / 2][(r >= 8) + 2 * (kk >= 8)], kk % 2);
      const float bv = half(fb[w][4 * n + (kk % 8) / 2][kk >= 8], kk % 2);
      sum += av * bv;
    }
    d[e] += sum;
  }
  __syncwarp();
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16 (PTX ISA, "ldmatrix"): four 8 x 8 b16 matrices; lane L gives
// the address of row L % 8 of matrix L / 8 (16 bytes, 16-byte aligned, shared memory). Lane 4g + t receives in
// r[m] the pair [g][2t], [g][2t+1] of matrix m, or with .trans the pair [2t][g], [2t+1][g] (the transposed
// matrix's row g). On the emulator the warp's row addresses go through shared memory, as for the mma model.
template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* row) {
#if defined(VR_CUDA_EMULATED)
  __shared__ const __nv_bfloat16* rows[32][32];
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  if (reinterpret_cast<uintptr_t>(row) % 16 != 0) {  // a misaligned address faults on the GPU
    std::fprintf(stderr, "cuda_emu: ldmatrix row address %p is not 16-byte aligned\n", static_cast<const void*>(row));
    std::abort();
  }
  rows[w][lane] = row;
  __syncwarp();
  if (lane == 0 && cudaemu::banks::on()) {  // one instruction: matrix m's rows from lanes 8m .. 8m + 7
    uint64_t addr[32];
    for (int l = 0; l < 32; l++) addr[l] = reinterpret_cast<uintptr_t>(rows[w][l]);
    cudaemu::banks::warp_access(cudaemu::banks::Op::Ldmatrix, w, 0xffffffffu, addr);
  }
  for (int m = 0; m < 4; m++) {
    if (TRANS) {
      r[m] = uint32_t(bf16_bits(rows[w][8 * m + 2 * t][g])) | (uint32_t(bf16_bits(rows[w][8 * m + 2 * t + 1][g])) << 16);
    } else {
      uint32_t pair;  // not ld_pair: the model's reads are not the kernel's shared-memory instructions
      std::memcpy(&pair, rows[w][8 * m + g] + 2 * t, sizeof pair);
      r[m] = pair;
    }
  }
  __syncwarp();
#else
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
#endif
}

// ---- cp.async (sm_80 asynchronous global -> shared copies, PTX ISA "cp.async") -----------------------------------
// cp_async16(dst, src, valid): 16 bytes (both 16-byte aligned) copied asynchronously, or 16 zero bytes when !valid
// (src-size 0: src is not read). cp_async_commit() closes this thread's group of copies issued since the last one;
// cp_async_wait<N>() waits until at most the N most recent groups are still in flight. As on the GPU, a copy is
// visible to other threads only after the issuing thread waited for it AND a barrier; and every copy must be waited
// for before the kernel exits. The emulator MODELS this faithfully late: a copy reads its source at issue time
// (a kernel must not write it meanwhile) but lands in shared memory only in the issuing thread's wait, so a missing
// wait leaves stale data that the tests see. A block that exits with copies in flight aborts at the next block's
// first copy on that thread. CUDAEMU_CP_ASYNC=early lands each copy at issue instead (also a legal GPU timing):
// then a buffer refilled before every thread is done reading it (a missing barrier between the last read of a tile
// and the copies of the next one into the same buffer) gives wrong values, or trips wgmma's in-flight check - what
// the late model hides. The kernel tests run under both.
#if defined(VR_CUDA_EMULATED)
namespace cp_async_model {
struct Copy {
  __nv_bfloat16* dst;
  uint4 data;
  int group;  // 0: not committed yet
};
struct ThreadQueue {
  std::vector<Copy> copies;
  int groups = 0;
  int64_t block = -1;
  // Chunks landed since this thread's last fence.proxy.async (wgmma.cuh): an async-proxy read (wgmma) of one
  // aborts there. Cleared by that fence; only those of the block run `unfenced_block` (cudaemu::Block::serial) count.
  std::vector<const void*> unfenced;
  uint64_t unfenced_block = 0;
};
inline ThreadQueue& queue_of(int tid) {  // blocks run one at a time per OS thread: one queue per block thread
  static thread_local ThreadQueue q[1024];
  return q[tid];
}
inline ThreadQueue& queue() {  // the calling CUDA thread's
  return queue_of(int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)));
}
inline void fail(const char* what, const void* p) {
  std::fprintf(stderr, "cuda_emu: cp.async: %s (%p)\n", what, p);
  std::abort();
}
inline bool land_early() {  // CUDAEMU_CP_ASYNC=late (default) | early
  static const bool early = [] {
    const char* e = std::getenv("CUDAEMU_CP_ASYNC");
    if (!e || !*e || std::strcmp(e, "late") == 0) return false;
    if (std::strcmp(e, "early") == 0) return true;
    std::fprintf(stderr, "cuda_emu: CUDAEMU_CP_ASYNC=%s is not one of late, early\n", e);
    std::abort();
  }();
  return early;
}
}  // namespace cp_async_model
#endif

__device__ __forceinline__ void cp_async16(__nv_bfloat16* dst, const __nv_bfloat16* src, bool valid) {
#if defined(VR_CUDA_EMULATED)
  namespace m = cp_async_model;
  if (reinterpret_cast<uintptr_t>(dst) % 16 || (valid && reinterpret_cast<uintptr_t>(src) % 16))
    m::fail("a 16-byte copy address is not 16-byte aligned", valid ? static_cast<const void*>(src) : dst);
  if (cudaemu::banks::on()) cudaemu::record_shared_access(cudaemu::banks::Op::CpAsync16, dst);
  {  // write after read: a wgmma's reads of this chunk retired and published by a barrier (wgmma kernels: hb on)
    const cudaemu::Block& b = cudaemu::blk();
    const auto* d = reinterpret_cast<const unsigned char*>(dst);
    if (b.hb.on && d >= b.dyn_smem && d < b.dyn_smem + b.dyn_smem_bytes)
      if (const char* why = cudaemu::hb_write_hazard(b, uint32_t(d - b.dyn_smem), cudaemu::cur().lin)) m::fail(why, dst);
  }
  m::ThreadQueue& q = m::queue();
  const int64_t block = blockIdx.x + int64_t(gridDim.x) * (blockIdx.y + int64_t(gridDim.y) * blockIdx.z);
  if (!q.copies.empty() && q.block != block) m::fail("an earlier block exited with copies in flight", dst);
  if (q.copies.empty()) q.groups = 0;
  q.block = block;
  m::Copy c{dst, uint4{0, 0, 0, 0}, 0};
  if (valid) std::memcpy(&c.data, src, sizeof c.data);
  if (m::land_early()) std::memcpy(static_cast<void*>(dst), &c.data, sizeof c.data);  // the wait only re-lands it
  q.copies.push_back(c);
#else
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(VR_CUDA_EMULATED)
  cp_async_model::ThreadQueue& q = cp_async_model::queue();
  q.groups++;
  for (auto& c : q.copies)
    if (c.group == 0) c.group = q.groups;
#else
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(VR_CUDA_EMULATED)
  cp_async_model::ThreadQueue& q = cp_async_model::queue();
  size_t kept = 0;
  for (size_t i = 0; i < q.copies.size(); i++) {
    const cp_async_model::Copy& c = q.copies[i];
    if (c.group != 0 && c.group <= q.groups - N) {
      std::memcpy(static_cast<void*>(c.dst), &c.data, sizeof c.data);
      if (q.unfenced_block != cudaemu::blk().serial) q.unfenced.clear(), q.unfenced_block = cudaemu::blk().serial;
      q.unfenced.push_back(c.dst);
    } else {
      q.copies[kept++] = c;
    }
  }
  q.copies.resize(kept);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// Fragments through ldmatrix (one instruction per A fragment or per PAIR of B fragments), from row-major shared
// arrays of `ld` bf16 per row (ld * 2 a multiple of 16 bytes, k0 / n0 multiples of 8):
//   ldm_a:        the A fragment of the 16 x 16 tile S[r0 .. r0+16)[k0 .. k0+16);
//   ldm_b_nk:     B fragments of n-tiles n0 and n0 + 8, B[kk][n] = S[n0 + n][k0 + kk] (S stored [n][k], e.g. K);
//   ldm_b_kn:     the same from S stored [k][n] (B[kk][n] = S[k0 + kk][n0 + n], e.g. V in P V), via .trans.
__device__ __forceinline__ void ldm_a(uint32_t (&a)[4], const __nv_bfloat16* S, int ld, int r0, int k0) {
  const int lane = threadIdx.x % 32, m = lane / 8;
  ldmatrix_x4<false>(a, S + (r0 + (m & 1) * 8 + lane % 8) * ld + k0 + (m >> 1) * 8);
}
__device__ __forceinline__ void ldm_b_nk(uint32_t (&b0)[2], uint32_t (&b1)[2], const __nv_bfloat16* S, int ld, int n0,
                                         int k0) {
  const int lane = threadIdx.x % 32, m = lane / 8;
  uint32_t r[4];
  ldmatrix_x4<false>(r, S + (n0 + (m >> 1) * 8 + lane % 8) * ld + k0 + (m & 1) * 8);
  b0[0] = r[0], b0[1] = r[1], b1[0] = r[2], b1[1] = r[3];
}
__device__ __forceinline__ void ldm_b_kn(uint32_t (&b0)[2], uint32_t (&b1)[2], const __nv_bfloat16* S, int ld, int n0,
                                         int k0) {
  const int lane = threadIdx.x % 32, m = lane / 8;
  uint32_t r[4];
  ldmatrix_x4<true>(r, S + (k0 + (m & 1) * 8 + lane % 8) * ld + n0 + (m >> 1) * 8);
  b0[0] = r[0], b0[1] = r[1], b1[0] = r[2], b1[1] = r[3];
}

// Fragment loads from shared memory by 4-byte loads (the reference the ldmatrix model is checked against in
// mma_probe.cu; rows of `ld` bf16, ld even). A: the 16 x 16 tile at S[r0..r0+16)[k0..k0+16) of a row-major
// [rows][k] array. B: the 16 x 8 tile B[kk][n] = S[n0 + n][k0 + kk] of an array stored [n][k] ("k-contiguous").
__device__ __forceinline__ void load_a_frag(uint32_t (&a)[4], const __nv_bfloat16* S, int ld, int r0, int k0) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const __nv_bfloat16* p = S + (r0 + g) * ld + k0 + 2 * t;
  a[0] = ld_pair(p);
  a[1] = ld_pair(p + 8 * ld);
  a[2] = ld_pair(p + 8);
  a[3] = ld_pair(p + 8 * ld + 8);
}
__device__ __forceinline__ void load_b_frag(uint32_t (&b)[2], const __nv_bfloat16* S, int ld, int n0, int k0) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const __nv_bfloat16* p = S + (n0 + g) * ld + k0 + 2 * t;
  b[0] = ld_pair(p);
  b[1] = ld_pair(p + 8);
}
#endif

}  // namespace mma
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
