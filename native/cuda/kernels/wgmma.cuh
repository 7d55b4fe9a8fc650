// Hopper warpgroup MMA building blocks (sm_90a): wgmma.mma_async m64nNk16 bf16 -> fp32 with A from registers (RS)
// or from shared memory (SS) and B from shared memory, the 64-bit shared-memory matrix descriptors that name A / B,
// wgmma.fence / commit_group / wait_group, and the cross-proxy fence that ordinary (generic-proxy) shared-memory
// writes need before wgmma (async proxy) reads them. Used by the Hopper flash-attention forward
// (attention_wgmma.cu) and its probe (wgmma_probe.cu).
//
// Sources (PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate Instructions": wgmma.mma_async,
// "Register Fragments" / "Matrix Descriptor Format" / "Shared Memory Matrix Layout"; CUTLASS cute/arch/
// mma_sm90_desc.hpp (descriptor bit fields), cute/atom/mma_traits_sm90_gmma.hpp (CLayout_64xN, ALayout_64x16 and
// make_gmma_desc's canonical-layout table), cute/arch/mma_sm90_gmma.hpp (operand order of the asm)). Our reading:
//   * a warpgroup = 4 consecutive warps (threads 128 w .. 128 w + 127); the op is collective over it.
//   * Accumulator fragment (m64nN, fp32): thread 32 w + 4 g + t of the warpgroup holds, for every 8-column block
//     i < N / 8, d[4 i + e] = D[16 w + g + 8 (e >> 1)][8 i + 2 t + (e & 1)] - per warp the mma.m16n8 C layout,
//     warp w owning rows 16 w .. 16 w + 15.
//   * A from registers (m64k16, bf16 pairs, lower k in the low half): a0 = A[16w+g][2t..], a1 = A[16w+g+8][2t..],
//     a2 = A[16w+g][2t+8..], a3 = A[16w+g+8][2t+8..]: the mma.m16n8k16 A layout of each warp's 16 rows. So the
//     accumulator of S (N = keys) rounded to bf16 pairs IS the A fragment of P V (k-step j: blocks 2j, 2j + 1).
//   * Descriptor: bits 0-13 start address >> 4 (shared window, 18 bits), 16-29 leading-dimension byte offset (LBO)
//     >> 4, 32-45 stride-dimension byte offset (SBO) >> 4, 49-51 base offset (swizzle only), 62-63 swizzle mode
//     (0 = none). Only no-swizzle ("interleave") layouts are used here: their address function needs no guess of
//     the swizzle pattern; the price is bank conflicts, which the first GPU session measures (kernels README).
//   * No-swizzle canonical layouts, "core matrices" of 8 rows x 16 bytes stored as 128 contiguous bytes:
//       K-major (A, B without transpose): core (mn / 8, k / 8) at start + (mn / 8) SBO + (k / 8) LBO, row mn % 8
//         at + 16 (mn % 8), element k % 8 at + 2 (k % 8): LBO steps along K, SBO along M / N.
//       MN-major (B with the transpose bit, bf16 only): core (k / 8, n / 8) at start + (n / 8) SBO + (k / 8) LBO,
//         row k % 8 at + 16 (k % 8), element n % 8 at + 2 (n % 8): SBO steps along N, LBO along K.
//     The MN-major roles follow make_gmma_desc (what CUTLASS actually encodes: for the no-swizzle MN-major layout
//     SBO is the MN stride and LBO the K stride; the descriptor struct's comments and the ISA's prose are harder
//     to read the same way). The GPU probe test (test_wgmma.cc) decides; the run-time self-check guards the rest.
//   * Ordering: wgmma.fence before the first wgmma and whenever accumulator / A registers were written by other
//     instructions; the accumulators (and A registers) may not be read or written until a wgmma.wait_group covers
//     the op's commit group; the shared memory it reads may not change until then either. Shared memory written
//     by ordinary stores or cp.async (the generic proxy) must be made visible to the async proxy by
//     fence.proxy.async before a barrier that orders it before the wgmma.
//
// The EMULATOR MODEL (VR_CUDA_EMULATED) follows that reading as mma.cuh does for mma.sync:
//   * collective: every thread of the warpgroup publishes its operands and waits at a warpgroup barrier (an
//     emulator-only bar.sync id; a warpgroup that does not arrive whole is a deadlock report); the first thread of
//     the warpgroup reads A / B through the descriptors, checks that all 128 threads issued the same op, computes
//     the 64 x N product (fp32 sums of exact bf16 products, k in order) and queues each thread's fragment;
//   * late: a thread's accumulators change only in the wgmma.wait_group that covers the op's group (an uncommitted
//     op is never delivered); reading them earlier sees stale values, as a kernel missing a wait would on a GPU;
//   * checks (each aborts with a message; on a GPU they are silent races or faults): accumulator or A registers
//     written while the op is in flight; the shared memory the op read changed before its wait; a descriptor
//     whose start is not 16-byte aligned, outside the block's dynamic shared memory or naming a swizzle mode;
//     threads of a warpgroup issuing different ops; a block exiting with ops in flight; 16-byte chunks landed by
//     cp.async that the landing thread did not fence.proxy.async before the wgmma read them; chunks a cp.async of
//     any thread is still copying into (issued, not yet waited for) when the wgmma reads them; chunks another thread
//     landed and fenced with no barrier phase since that it arrived at and the reading warpgroup waited for
//     (cudaemu::HappensBefore: direct barriers only, not chains through a third thread).
//   Not modelled: ordinary stores without fence.proxy.async (not tracked), a missing wgmma.fence, the hardware's
//   summation order and internal precision (tests compare with tolerances), timing.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "cuda/kernels/mma.cuh"

#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)) || defined(VR_CUDA_EMULATED)
#define VR_WGMMA_AVAILABLE 1
#endif

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
namespace wgmma {

constexpr int kWarpgroup = 128;

// Byte offset of element [row][col] of a bf16 tile stored as no-swizzle core matrices: cores of 8 rows x 8 columns
// (16-byte rows, 128 contiguous bytes), core (row / 8, col / 8) at (row / 8) * row_group_bytes + (col / 8) * 128.
// As K-major operand (rows = M or N, cols = K): LBO = 128, SBO = row_group_bytes. As MN-major B (rows = K,
// cols = N): LBO = row_group_bytes, SBO = 128. A 16-byte chunk (8 columns) is contiguous, so cp.async fills it.
__host__ __device__ __forceinline__ constexpr uint32_t core_offset(int row, int col, uint32_t row_group_bytes) {
  return uint32_t(row / 8) * row_group_bytes + uint32_t(col / 8) * 128u + uint32_t(row % 8) * 16u +
         uint32_t(col % 8) * 2u;
}

// Which (row, first column) of a core-matrix tile `cols` elements wide (a multiple of 8) the 16-byte chunk number c
// of a tile load fills: row % 8 fastest, then the 8-column chunk, then the 8-row group, so the chunk's SHARED offset
// is linear, core_offset(row, col, cols / 8 * 128) == 16 c, and the global side is derived from it. Why this order:
// numbering chunks row-major instead (row = c / (cols / 8)) puts consecutive threads' chunks 128 bytes apart in
// shared memory, so the 8 threads of each 16-byte-access phase of a warp all write the same 4 banks (an 8-way
// conflict on every cp.async and store); in this order a warp writes 512 contiguous bytes of shared memory and
// reads 8 rows x 64 contiguous bytes (whole 32-byte sectors) of global memory. Every wgmma tile loader uses it.
struct TileChunk {
  int row, col;
};
__host__ __device__ __forceinline__ constexpr TileChunk tile_chunk(int c, int cols) {
  return TileChunk{(c / cols) * 8 + c % 8, (c / 8) % (cols / 8) * 8};  // 8 rows x cols / 8 chunks per row group
}
static_assert(core_offset(tile_chunk(1, 128).row, tile_chunk(1, 128).col, 2048) == 16 &&
                  core_offset(tile_chunk(8, 128).row, tile_chunk(8, 128).col, 2048) == 128 &&
                  core_offset(tile_chunk(131, 128).row, tile_chunk(131, 128).col, 2048) == 131 * 16,
              "tile_chunk: shared offset 16 c");

#if defined(VR_WGMMA_AVAILABLE)
#if defined(VR_CUDA_EMULATED)
namespace model {
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda_emu: wgmma: %s\n", what);
  std::fflush(stderr);
  std::abort();
}
inline int linear_tid() { return int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }
struct Chunk {
  uint32_t offset;  // in the block's dynamic shared memory
  unsigned char bytes[16];
};
struct Op {  // what one warpgroup op read, shared by its 128 pending deliveries
  std::vector<Chunk> chunks;
  int retired = 0;  // deliveries done
  int wg = 0;       // the warpgroup that issued it
};
struct Pending {
  float* d;
  int n;  // accumulator registers (N / 2)
  float val[64], before[64];
  const uint32_t* a;  // RS: the A registers, which must not change before the wait either
  uint32_t a_before[4];
  bool accumulate;
  int group;  // 0: not committed yet
  std::shared_ptr<Op> op;
};
struct ThreadState {
  std::vector<Pending> pending;
  int groups = 0;
  int64_t block = -1;
};
inline ThreadState& state_of(int tid) {  // blocks run one at a time per OS thread, so this is per block thread
  static thread_local ThreadState s[1024];
  return s[tid];
}
struct Stage {  // what each thread of a warpgroup brought to the op
  int n;
  bool rs, trans_b, accumulate;
  uint64_t desc_a, desc_b;
  uint32_t a[4];
  const uint32_t* a_ptr;
  float* d;
};
inline Stage (&stage())[8][kWarpgroup] {
  static thread_local Stage s[8][kWarpgroup];
  return s;
}

// The 16 bytes at shared-window offset `off`, recorded in `op` for the end-of-op check.
inline const unsigned char* read_chunk(Op& op, uint32_t off) {
  cudaemu::Block& b = cudaemu::blk();
  if (off % 16 != 0) fail("a shared-memory operand chunk is not 16-byte aligned");
  if (size_t(off) + 16 > b.dyn_smem_bytes)
    fail("a descriptor addresses shared memory past the block's dynamic shared memory");
  Chunk c;
  c.offset = off;
  std::memcpy(c.bytes, b.dyn_smem + off, 16);
  op.chunks.push_back(c);
  return b.dyn_smem + off;
}
inline float bf16_at(const unsigned char* p, int i) {
  uint16_t bits;
  std::memcpy(&bits, p + 2 * i, 2);
  return mma::f32_from_bits(uint32_t(bits) << 16);
}
struct Desc {
  uint32_t start, lbo, sbo;
};
inline Desc decode(uint64_t desc) {
  if ((desc >> 62) != 0) fail("a descriptor names a swizzle mode (only no-swizzle layouts are modelled)");
  if (((desc >> 49) & 7u) != 0) fail("a descriptor has a nonzero base offset (swizzle only)");
  return Desc{uint32_t(desc & 0x3FFFu) << 4, uint32_t((desc >> 16) & 0x3FFFu) << 4,
              uint32_t((desc >> 32) & 0x3FFFu) << 4};
}


// The first thread of warpgroup `wg` runs the op for all 128.
inline void execute(int wg) {
  const Stage* s = stage()[wg];
  const Stage& s0 = s[0];
  for (int i = 1; i < kWarpgroup; i++) {
    const Stage& x = s[i];
    if (x.n != s0.n || x.rs != s0.rs || x.trans_b != s0.trans_b || x.accumulate != s0.accumulate ||
        x.desc_b != s0.desc_b || (!s0.rs && x.desc_a != s0.desc_a))
      fail("the threads of a warpgroup issued different ops (shape, descriptors, scale-d or transpose differ)");
  }
  const int N = s0.n;
  auto op = std::make_shared<Op>();
  float A[64][16], B[16][256];
  if (s0.rs) {
    for (int m = 0; m < 64; m++)
      for (int k = 0; k < 16; k++) {
        const int w = m / 16, g = m % 8, t = (k % 8) / 2, reg = (m % 16 >= 8) + 2 * (k >= 8);
        const uint32_t r = s[32 * w + 4 * g + t].a[reg];
        A[m][k] = mma::f32_from_bits((k % 2 ? r >> 16 : r & 0xFFFFu) << 16);
      }
  } else {
    const Desc da = decode(s0.desc_a);
    for (int m = 0; m < 64; m++)
      for (int kc = 0; kc < 2; kc++) {
        const unsigned char* p = read_chunk(*op, da.start + (m / 8) * da.sbo + kc * da.lbo + (m % 8) * 16);
        for (int j = 0; j < 8; j++) A[m][8 * kc + j] = bf16_at(p, j);
      }
  }
  const Desc db = decode(s0.desc_b);
  if (!s0.trans_b) {
    for (int n = 0; n < N; n++)
      for (int kc = 0; kc < 2; kc++) {
        const unsigned char* p = read_chunk(*op, db.start + (n / 8) * db.sbo + kc * db.lbo + (n % 8) * 16);
        for (int j = 0; j < 8; j++) B[8 * kc + j][n] = bf16_at(p, j);
      }
  } else {
    for (int k = 0; k < 16; k++)
      for (int nc = 0; nc < N / 8; nc++) {
        const unsigned char* p = read_chunk(*op, db.start + nc * db.sbo + (k / 8) * db.lbo + (k % 8) * 16);
        for (int j = 0; j < 8; j++) B[k][8 * nc + j] = bf16_at(p, j);
      }
  }
  // cp.async landings not yet fenced into the async proxy, by any thread of the block.
  const cudaemu::Block& b = cudaemu::blk();
  for (int tid = 0; tid < b.nthreads; tid++) {
    const mma::cp_async_model::ThreadQueue& q = mma::cp_async_model::queue_of(tid);
    if (q.unfenced_block != b.serial) continue;
    for (const void* landed : q.unfenced)
      for (const Chunk& c : op->chunks)
        if (landed == b.dyn_smem + c.offset)
          fail("shared memory landed by cp.async is read without a fence.proxy.async by the copying thread (the "
               "async proxy may not see it)");
  }
  // cp.async copies issued and not yet waited for, by any thread of the block, into a chunk the op reads: a race on
  // the GPU whatever the timing (the copy may land before, during or after the read), which the scheduler's rounds
  // can hide (a wgmma's collective barrier gives every other thread a turn, and its wait may land the copy first).
  {
    std::vector<uint32_t> offs;
    offs.reserve(op->chunks.size());
    for (const Chunk& c : op->chunks) offs.push_back(c.offset);
    std::sort(offs.begin(), offs.end());
    const int64_t bidx = blockIdx.x + int64_t(gridDim.x) * (blockIdx.y + int64_t(gridDim.y) * blockIdx.z);
    for (int tid = 0; tid < b.nthreads; tid++) {
      const mma::cp_async_model::ThreadQueue& q = mma::cp_async_model::queue_of(tid);
      if (q.block != bidx) continue;
      for (const mma::cp_async_model::Copy& c : q.copies) {
        const auto* d = reinterpret_cast<const unsigned char*>(c.dst);
        if (d < b.dyn_smem || d >= b.dyn_smem + b.dyn_smem_bytes) continue;
        if (std::binary_search(offs.begin(), offs.end(), uint32_t(d - b.dyn_smem)))
          fail("a wgmma reads shared memory that a cp.async not yet waited for is copying into (a race on the GPU: "
               "a barrier between the copying thread's cp.async.wait and the wgmma is missing)");
      }
    }
  }
  // Every chunk published to this warpgroup (its first thread) by a barrier after the landing thread's fence.
  for (const Chunk& c : op->chunks)
    if (!cudaemu::hb_published(b, c.offset, wg * kWarpgroup))
      fail("a wgmma reads shared memory that another thread landed (cp.async, fenced) with no barrier phase since that "
           "the landing thread arrived at and this warpgroup waited for (a race on the GPU)");
  // Its reads are in flight until the warpgroup's last thread waits for the op; a cp.async issued into these chunks
  // before that, or after it without a barrier between, is a race (cudaemu::hb_write_hazard, checked at issue).
  {
    cudaemu::Block& mb = cudaemu::blk();
    cudaemu::hb_enable(mb);
    op->wg = wg;
    for (const Chunk& c : op->chunks) cudaemu::hb_read_issued(mb, c.offset, wg);
  }
  const int base = wg * kWarpgroup;
  for (int i = 0; i < kWarpgroup; i++) {
    const int w = i / 32, g = (i % 32) / 4, t = i % 4;
    Pending p;
    p.d = s[i].d;
    p.n = N / 2;
    for (int r = 0; r < N / 2; r++) {
      const int row = 16 * w + g + 8 * ((r % 4) >> 1), col = 8 * (r / 4) + 2 * t + (r & 1);
      float sum = 0.f;
      for (int k = 0; k < 16; k++) sum += A[row][k] * B[k][col];
      p.val[r] = sum;
    }
    std::memcpy(p.before, p.d, sizeof(float) * size_t(N / 2));
    p.a = s0.rs ? s[i].a_ptr : nullptr;
    if (p.a) std::memcpy(p.a_before, p.a, sizeof p.a_before);
    p.accumulate = s0.accumulate;
    p.group = 0;
    p.op = op;
    ThreadState& ts = state_of(base + i);
    ts.pending.push_back(p);
  }
}

inline void issue(int n, bool rs, uint64_t desc_a, const uint32_t* a, uint64_t desc_b, bool trans_b, bool accumulate,
                  float* d) {
  const int nthreads = int(blockDim.x * blockDim.y * blockDim.z);
  if (nthreads % kWarpgroup != 0) fail("the block is not made of whole warpgroups (a multiple of 128 threads)");
  const int tid = linear_tid(), wg = tid / kWarpgroup;
  ThreadState& ts = state_of(tid);
  const int64_t block = int64_t(cudaemu::blk().serial);
  if (!ts.pending.empty() && ts.block != block) fail("an earlier block exited with wgmma ops in flight");
  if (ts.pending.empty()) ts.groups = 0;
  ts.block = block;
  Stage& st = stage()[wg][tid % kWarpgroup];
  st.n = n, st.rs = rs, st.trans_b = trans_b, st.accumulate = accumulate;
  st.desc_a = desc_a, st.desc_b = desc_b, st.d = d, st.a_ptr = a;
  if (a) std::memcpy(st.a, a, sizeof st.a);
  cudaemu::named_barrier(cudaemu::kKernelNamedBarriers + wg, kWarpgroup);
  if (tid % kWarpgroup == 0) execute(wg);
  cudaemu::named_barrier(cudaemu::kKernelNamedBarriers + wg, kWarpgroup);  // every delivery queued, stage free
}

inline void commit() {
  ThreadState& ts = state_of(linear_tid());
  ts.groups++;
  for (Pending& p : ts.pending)
    if (p.group == 0) p.group = ts.groups;
}

inline void wait(int keep) {
  const int tid = linear_tid();
  ThreadState& ts = state_of(tid);
  size_t kept = 0;
  for (size_t i = 0; i < ts.pending.size(); i++) {
    Pending& p = ts.pending[i];
    if (p.group == 0 || p.group > ts.groups - keep) {
      ts.pending[kept++] = p;
      continue;
    }
    if (std::memcmp(p.d, p.before, sizeof(float) * size_t(p.n)) != 0)
      fail("accumulator registers were written while a wgmma using them was in flight (before its wait_group)");
    if (p.a && std::memcmp(p.a, p.a_before, sizeof p.a_before) != 0)
      fail("A-fragment registers were written while a wgmma reading them was in flight (before its wait_group)");
    // The op's shared memory is unchanged up to this wait: checked by each warp's first thread and by the op's last
    // delivery (so a write anywhere before the last thread of the warpgroup waited is caught whatever the schedule;
    // conservative: the model wants all four warps past the wait before the operands change).
    const bool last = ++p.op->retired == kWarpgroup;
    if (tid % 32 == 0 || last) {
      const unsigned char* smem = cudaemu::blk().dyn_smem;
      for (const Chunk& c : p.op->chunks)
        if (std::memcmp(smem + c.offset, c.bytes, 16) != 0)
          fail("shared memory read by a wgmma changed before the wait_group covering it (a race on the GPU)");
    }
    if (last)  // the op's reads are over: a copy into its chunks needs a barrier after this thread's wait
      for (const Chunk& c : p.op->chunks) cudaemu::hb_read_retired(cudaemu::blk(), c.offset, p.op->wg, tid);
    for (int r = 0; r < p.n; r++) p.d[r] = (p.accumulate ? p.d[r] : 0.f) + p.val[r];
    for (size_t j = i + 1; j < ts.pending.size(); j++)  // later ops on the same registers see the delivered values
      if (ts.pending[j].d == p.d) std::memcpy(ts.pending[j].before, p.d, sizeof(float) * size_t(p.n));
  }
  ts.pending.resize(kept);
}
}  // namespace model
#endif

// The address of a shared-memory pointer in the shared window, as descriptors hold it. On the emulator: the offset
// in the block's dynamic shared memory (the only shared memory a descriptor may name there).
__device__ __forceinline__ uint32_t smem_address(const void* p) {
#if defined(VR_CUDA_EMULATED)
  const cudaemu::Block& b = cudaemu::blk();
  const auto* c = static_cast<const unsigned char*>(p);
  if (c < b.dyn_smem || c >= b.dyn_smem + b.dyn_smem_bytes)
    model::fail("a descriptor's start is not in the block's dynamic shared memory");
  return uint32_t(c - b.dyn_smem);
#else
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
#endif
}

// A no-swizzle descriptor: start (16-byte aligned), leading / stride byte offsets (multiples of 16, < 256 KiB).
__device__ __forceinline__ uint64_t make_desc(const void* start, uint32_t lbo, uint32_t sbo) {
  const uint32_t addr = smem_address(start);
#if defined(VR_CUDA_EMULATED)
  if (addr % 16 != 0) model::fail("a descriptor's start address is not 16-byte aligned");
  if (lbo % 16 != 0 || sbo % 16 != 0 || lbo >= (1u << 18) || sbo >= (1u << 18))
    model::fail("a descriptor's leading / stride byte offset is not a multiple of 16 below 256 KiB");
#endif
  return uint64_t((addr & 0x3FFFFu) >> 4) | (uint64_t((lbo >> 4) & 0x3FFFu) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFFu) << 32);
}
// Descriptors of a core-matrix tile (core_offset) at `tile`: as K-major A / B, and as MN-major B.
__device__ __forceinline__ uint64_t desc_k_major(const __nv_bfloat16* tile, uint32_t row_group_bytes) {
  return make_desc(tile, 128u, row_group_bytes);
}
__device__ __forceinline__ uint64_t desc_mn_major(const __nv_bfloat16* tile, uint32_t row_group_bytes) {
  return make_desc(tile, row_group_bytes, 128u);
}

// wgmma.fence.sync.aligned: orders this thread's earlier register accesses to accumulators / A fragments before
// the following wgmma ops (required before the first op and after the registers were written otherwise).
__device__ __forceinline__ void fence() {
#if !defined(VR_CUDA_EMULATED)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void commit_group() {
#if defined(VR_CUDA_EMULATED)
  model::commit();
#else
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until at most N of this thread's committed groups are in flight; their accumulators are then readable.
template <int N>
__device__ __forceinline__ void wait_group() {
#if defined(VR_CUDA_EMULATED)
  model::wait(N);
#else
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// fence.proxy.async.shared::cta: this thread's earlier generic-proxy writes to shared memory (ordinary stores,
// cp.async once waited for) become visible to the async proxy (wgmma's operand reads); a barrier must follow
// before another thread's wgmma reads them.
__device__ __forceinline__ void fence_proxy_async() {
#if defined(VR_CUDA_EMULATED)
  // The fenced chunks are this thread's landings from here on (cudaemu::HappensBefore): another warpgroup's wgmma
  // may read them only after a barrier phase this thread arrives at later and that warpgroup waits for.
  mma::cp_async_model::ThreadQueue& q = mma::cp_async_model::queue();
  cudaemu::Block& b = cudaemu::blk();
  if (!q.unfenced.empty() && q.unfenced_block == b.serial) {
    cudaemu::hb_enable(b);
    const int lin = model::linear_tid();
    for (const void* p : q.unfenced) {
      const auto* c = static_cast<const unsigned char*>(p);
      if (c < b.dyn_smem || c >= b.dyn_smem + b.dyn_smem_bytes) continue;
      const size_t chunk = size_t(c - b.dyn_smem) / 16;
      b.hb.land_thread[chunk] = lin;
      b.hb.land_arrival[chunk] = b.hb.arrivals[size_t(lin)];
    }
  }
  q.unfenced.clear();
#else
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Keeps the compiler from moving accesses of an in-flight register across this point (CUTLASS's
// warpgroup_fence_operand): used on accumulators and RS A fragments around the ops and after the wait.
__device__ __forceinline__ void fence_operand(float& r) {
#if !defined(VR_CUDA_EMULATED)
  asm volatile("" : "+f"(r)::"memory");
#else
  (void)r;
#endif
}
__device__ __forceinline__ void fence_operand(uint32_t& r) {
#if !defined(VR_CUDA_EMULATED)
  asm volatile("" : "+r"(r)::"memory");
#else
  (void)r;
#endif
}
template <int R>
__device__ __forceinline__ void fence_operands(float (&d)[R]) {
  VR_UNROLL for (int i = 0; i < R; i++) fence_operand(d[i]);
}

// Named barriers (ids 1..15; 0 is __syncthreads'). A phase of barrier `id` completes when `count` threads (a
// multiple of 32) have arrived, bar.sync and bar.arrive alike; bar_sync waits for the phase, bar_arrive does not.
// So a group that must wait for another syncs, and the group it waits for arrives: e.g. count 256 = 128 threads of
// warpgroup 0 syncing + 128 of warpgroup 1 arriving is "warpgroup 0 goes on once warpgroup 1 got here", one-sided
// (the ping-pong turns of attention_wgmma.cu). Memory: bar.sync orders the arriving threads' earlier shared-memory
// writes before the syncing threads' later reads (bar.arrive has release, bar.sync acquire semantics). The emulator
// (cudaemu::named_arrival) reports a count mismatch, a thread arriving twice in one phase, and a block ending with a
// phase partly arrived; syncs whose arrivals never come are a deadlock report.
__device__ __forceinline__ void bar_sync(int id, int count) {
#if defined(VR_CUDA_EMULATED)
  if (id < 0 || id >= cudaemu::kKernelNamedBarriers) model::fail("bar.sync id outside [0, 16)");
  cudaemu::named_barrier(id, count);
#else
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}
__device__ __forceinline__ void bar_arrive(int id, int count) {
#if defined(VR_CUDA_EMULATED)
  if (id < 0 || id >= cudaemu::kKernelNamedBarriers) model::fail("bar.arrive id outside [0, 16)");
  cudaemu::named_arrive(id, count);
#else
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}

// D (64 x N, fp32 fragments d[N / 2]) = A B + (accumulate ? D : 0), k = 16. A: 64 x 16 K-major in shared memory
// (desc_a) or the thread's 4 A-fragment registers; B: 16 x N in shared memory (desc_b), K-major or, with TRANS_B,
// MN-major. N = 32, 64 or 128. Issued by all 128 threads of the warpgroup; results arrive at wait_group.
template <int N, bool TRANS_B>
__device__ __forceinline__ void mma_ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, bool accumulate) {
  static_assert(N == 32 || N == 64 || N == 128, "wgmma shapes instantiated: N = 32, 64, 128");
#if defined(VR_CUDA_EMULATED)
  model::issue(N, false, desc_a, nullptr, desc_b, TRANS_B, accumulate, d);
#else
  if constexpr (N == 32) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, %19;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(desc_a), "l"(desc_b), "r"(int(accumulate)), "n"(int(TRANS_B)));
  }
  if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, %35;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(desc_a), "l"(desc_b), "r"(int(accumulate)), "n"(int(TRANS_B)));
  }
  if constexpr (N == 128) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, %67;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(desc_a), "l"(desc_b), "r"(int(accumulate)), "n"(int(TRANS_B)));
  }
#endif
}
template <int N, bool TRANS_B>
__device__ __forceinline__ void mma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, bool accumulate) {
  static_assert(N == 32 || N == 64 || N == 128, "wgmma shapes instantiated: N = 32, 64, 128");
#if defined(VR_CUDA_EMULATED)
  model::issue(N, true, 0, a, desc_b, TRANS_B, accumulate, d);
#else
  if constexpr (N == 32) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, %22;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(int(accumulate)), "n"(int(TRANS_B)));
  }
  if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(int(accumulate)), "n"(int(TRANS_B)));
  }
  if constexpr (N == 128) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(int(accumulate)), "n"(int(TRANS_B)));
  }
#endif
}
#endif  // VR_WGMMA_AVAILABLE

}  // namespace wgmma
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
