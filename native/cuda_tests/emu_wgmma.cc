// The emulator's wgmma model (cuda/kernels/wgmma.cuh) on what a GPU would do silently or fault on: accumulators
// delivered only at the covering wait_group (read earlier: stale), and aborts for shared memory changed while an op
// is in flight, accumulators written while in flight, cp.async data read without fence.proxy.async, a misaligned
// descriptor, a warp of the warpgroup missing the op (deadlock report); plus bar.sync over one warpgroup and
// bar.arrive (producer / consumer hand-off, missing / mismatched / doubled / leftover arrivals), and the
// happens-before of another warpgroup's cp.async landings through a barrier.
// Emulator only (emu_*.cc): on a GPU these are undefined behaviour. Also the tile loaders' chunk order
// (wgmma::tile_chunk), host arithmetic: conflict-free shared-memory writes.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/kernels/wgmma.cuh"
#include "cuda_emu/cuda_compat.h"
#include "cuda_tests/emu_aborts.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

using namespace vr::cuda;

enum Mode { kLate, kSmemRace, kAccWrite, kNoProxyFence, kMisaligned, kWarpMissing };

// One warpgroup: A (64 x 16) and B (16 x 32, K-major) tiles of ones in dynamic shared memory, one SS op
// D = A B (every element 16), then per mode something legal or not. out[tid]: d[0] seen before the wait (kLate),
// then after it.
__global__ void wgmma_mode_kernel(float* out, const __nv_bfloat16* ones, int mode) {
  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* As = smem;             // 64 x 16: 2048 bytes
  __nv_bfloat16* Bs = smem + 64 * 16;   // 32 x 16
  const int tid = threadIdx.x;
  if (mode == kNoProxyFence || mode == kLate) {
    for (int ch = tid; ch < (64 + 32) * 2; ch += 128) mma::cp_async16(smem + 8 * ch, ones, true);
    mma::cp_async_commit();
    mma::cp_async_wait<0>();
    if (mode != kNoProxyFence) wgmma::fence_proxy_async();
  } else {
    for (int i = tid; i < (64 + 32) * 16; i += 128) smem[i] = __float2bfloat16(1.f);
    wgmma::fence_proxy_async();
  }
  __syncthreads();
  float d[16];
  for (int i = 0; i < 16; i++) d[i] = -1.f;
  const uint64_t da = wgmma::desc_k_major(mode == kMisaligned ? As + 4 : As, 256);
  const uint64_t db = wgmma::desc_k_major(Bs, 256);
  if (!(mode == kWarpMissing && tid >= 96)) {
    wgmma::fence();
    wgmma::mma_ss<32, false>(d, da, db, false);
    wgmma::commit_group();
    out[tid] = d[0];
    if (mode == kSmemRace && tid == 5) As[3] = __float2bfloat16(2.f);
    if (mode == kAccWrite && tid == 7) d[3] = 0.f;
    wgmma::wait_group<0>();
  }
  out[128 + tid] = d[0];
}

// Two warpgroups: warpgroup 0 writes, bar.sync 1 over its 128 threads, reads its neighbour's value; warpgroup 1 the
// same on barrier 2. A count of 64 on a 128-thread warpgroup's barrier would release early, 160 never: the latter
// is a deadlock report.
__global__ void bar_sync_kernel(int* out, int count) {
  __shared__ int v[256];
  const int tid = threadIdx.x, wg = tid / 128;
  v[tid] = tid * 3;
  wgmma::bar_sync(1 + wg, count);
  out[tid] = v[wg * 128 + (tid + 37) % 128];
}

// Happens-before of cp.async landings (cudaemu::HappensBefore): warpgroup 1 copies A (64 x 16) and B (32 x 16) tiles
// of ones, waits, fences them into the async proxy and arrives at barrier 1, where warpgroup 0 syncs before its
// wgmma reads them. kHbArriveFirst arrives before the fence: the chunks are this thread's landings only after its
// arrival, so no barrier phase published them to warpgroup 0 - an abort, though every copy has landed and been
// fenced by the time warpgroup 0 reads (the emulator's order), which a GPU does not promise.
// The other direction (checked at cp.async issue): then warpgroup 1 refills the tiles for a next round. kHbRefillOk:
// after barrier 2, which warpgroup 0 arrives at once its wait_group retired the read. kHbRefillEarly: warpgroup 0
// arrives before its wait_group (the read may still be going on): aborts at the copy (the read in flight, or retired
// with no barrier since, by the schedule), whenever the copies would land (CUDAEMU_CP_ASYNC late or early) - only
// this check sees it (without it the mode passes). kHbRefillNoBarrier: no barrier at all: aborts, at the copy or,
// where the emulator runs the refill first, at the wgmma (the landing check).
enum HbMode { kHbOk, kHbArriveFirst, kHbRefillOk, kHbRefillEarly, kHbRefillNoBarrier };
__global__ void hb_kernel(float* out, const __nv_bfloat16* ones, int mode) {
  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  const int tid = threadIdx.x, wg = tid / 128;
  const bool refill = mode >= kHbRefillOk, release = mode == kHbRefillOk || mode == kHbRefillEarly;
  if (wg == 1) {
    for (int ch = tid - 128; ch < (64 + 32) * 2; ch += 128) mma::cp_async16(smem + 8 * ch, ones, true);
    mma::cp_async_commit();
    mma::cp_async_wait<0>();
    if (mode == kHbArriveFirst) wgmma::bar_arrive(1, 256);
    wgmma::fence_proxy_async();
    if (mode != kHbArriveFirst) wgmma::bar_arrive(1, 256);
    if (!refill) return;
    if (release) wgmma::bar_sync(2, 256);  // warpgroup 0 is done with the tiles
    for (int ch = tid - 128; ch < (64 + 32) * 2; ch += 128) mma::cp_async16(smem + 8 * ch, ones, true);
    mma::cp_async_commit();
    mma::cp_async_wait<0>();
    return;
  }
  wgmma::bar_sync(1, 256);
  float d[16];
  wgmma::fence();
  wgmma::mma_ss<32, false>(d, wgmma::desc_k_major(smem, 256), wgmma::desc_k_major(smem + 64 * 16, 256), false);
  wgmma::commit_group();
  if (mode == kHbRefillEarly) wgmma::bar_arrive(2, 256);
  wgmma::wait_group<0>();
  if (mode == kHbRefillOk) wgmma::bar_arrive(2, 256);
  out[tid] = d[0];
}

// bar.arrive beside bar.sync (PTX semantics, emu_scheduler.h named_arrival): two warpgroups hand a buffer back and
// forth for kRounds rounds over two barrier ids reused every round. Warpgroup 1 writes round r's values into v and
// arrives at barrier 1 (256 = its 128 arrivals + warpgroup 0's 128 syncs); warpgroup 0 syncs there, reads them and
// arrives at barrier 2, where warpgroup 1 syncs before it overwrites v. Each round warpgroup 1 also arrives alone at
// barrier 3 with count 128 (a phase of arrivals only completes, nobody waits). out[128 r + t]: what thread t of
// warpgroup 0 read in round r. Modes break one rule each.
enum ArriveMode { kArriveOk, kArriveMissing, kArriveCountMismatch, kArriveTwice, kArriveLeftover };
constexpr int kRounds = 5;
__global__ void bar_arrive_kernel(int* out, int mode) {
  __shared__ int v[128];
  const int tid = threadIdx.x, wg = tid / 128, t = tid % 128;
  if (wg == 0) v[t] = -1;
  __syncthreads();
  for (int r = 0; r < kRounds; r++) {
    if (wg == 1) {
      if (r > 0) wgmma::bar_sync(2, 256);  // warpgroup 0 is done reading round r - 1
      v[(t + 45) % 128] = 1000 * r + t;
      const int count = mode == kArriveCountMismatch ? 192 : 256;
      if (!(mode == kArriveMissing && r == 2 && t < 32)) wgmma::bar_arrive(1, count);
      if (mode == kArriveTwice && r == 1) wgmma::bar_arrive(1, 256);
      wgmma::bar_arrive(3, 128);
    } else {
      wgmma::bar_sync(1, 256);  // round r's values are in
      out[128 * r + t] = v[t];
      if (r + 1 < kRounds || mode == kArriveLeftover) wgmma::bar_arrive(2, 256);
    }
  }
}

// Shared-memory conflict ways of a tile load whose chunk c lands at byte offset off(c): the most chunks of one
// 16-byte-access phase (8 consecutive threads: 8 x 16 bytes = the 32 banks once) that share a 16-byte bank group;
// 1 = conflict-free.
template <class Offset>
int phase_conflict_ways(int chunks, Offset off) {
  int worst = 0;
  for (int p0 = 0; p0 < chunks; p0 += 8) {
    int count[8] = {0};
    for (int c = p0; c < p0 + 8 && c < chunks; c++) worst = std::max(worst, ++count[(off(c) / 16) % 8]);
  }
  return worst;
}

}  // namespace

// The wgmma tile loaders' chunk order (wgmma::tile_chunk, host arithmetic): for tiles of 32 / 64 / 128 columns and
// 16 / 64 / 128 rows, every chunk lands at shared offset 16 c = core_offset of its (row, col), each chunk of the
// tile exactly once, no two chunks of an 8-thread phase in the same bank group, and each warp's 32 chunks read whole
// 64-byte row pieces (8 rows x 4 adjacent chunks) of global memory; the row-major order it replaced is seen 8-way
// conflicted by the same count (so the count can fail).
VR_TEST(cuda_emu_wgmma_tile_chunk_banks) {
  for (int cols : {32, 64, 128})
    for (int rows : {16, 64, 128}) {
      const int chunks = rows * cols / 8;
      const uint32_t group = uint32_t(cols / 8) * 128u;
      std::vector<int> hits(size_t(chunks), 0);
      bool linear = true, in_range = true, sectors = true;
      for (int c = 0; c < chunks; c++) {
        const wgmma::TileChunk x = wgmma::tile_chunk(c, cols);
        in_range &= x.row >= 0 && x.row < rows && x.col >= 0 && x.col < cols && x.col % 8 == 0;
        const uint32_t off = wgmma::core_offset(x.row, x.col, group);
        linear &= off == uint32_t(16 * c);
        if (off % 16 == 0 && off / 16 < uint32_t(chunks)) hits[off / 16]++;
      }
      for (int w0 = 0; w0 < chunks; w0 += 32) {  // a warp's chunks: per row, 4 adjacent chunks from a 32-column start
        for (int c = w0; c < w0 + 32 && c < chunks; c++) {
          const wgmma::TileChunk x = wgmma::tile_chunk(c, cols), first = wgmma::tile_chunk(w0 + (c - w0) % 8, cols);
          sectors &= x.row == first.row && x.col == first.col + 8 * ((c - w0) / 8) && first.col % 32 == 0;
        }
      }
      const bool once = std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; });
      const int ways = phase_conflict_ways(chunks, [&](int c) {
        const wgmma::TileChunk x = wgmma::tile_chunk(c, cols);
        return int(wgmma::core_offset(x.row, x.col, group));
      });
      const int ways_row_major = phase_conflict_ways(
          chunks, [&](int c) { return int(wgmma::core_offset(c / (cols / 8), (c % (cols / 8)) * 8, group)); });
      const std::string tag = "wgmma tile_chunk " + std::to_string(rows) + " x " + std::to_string(cols) + ": ";
      check_true(tag + "(row, col) in the tile, shared offset 16 c, every chunk once", in_range && linear && once);
      check_true(tag + "each 8-thread phase hits 8 distinct bank groups (ways " + std::to_string(ways) + ")",
                 ways == 1);
      check_true(tag + "a warp reads 8 rows x 64 contiguous bytes", sectors);
      check_true(tag + "the row-major chunk order would be " + std::to_string(ways_row_major) + "-way conflicted",
                 ways_row_major == std::min(8, cols / 8));
    }
}

VR_TEST(cuda_emu_wgmma_model) {
  std::vector<__nv_bfloat16> ones(8, __float2bfloat16(1.f));
  std::vector<float> out(256, 0.f);
  const size_t smem = (64 + 32) * 16 * 2;
  auto run = [&](int mode) {
    return cuda_launch(wgmma_mode_kernel, dim3(1), dim3(128), smem, nullptr, out.data(), ones.data(), mode);
  };
  run(kLate);
  bool late = true;
  for (int t = 0; t < 128; t++) late &= out[size_t(t)] == -1.f && out[size_t(128 + t)] == 16.f;
  check_true("emu wgmma: accumulators keep their old value until wait_group, then hold A B (all 128 threads)", late);
  check_true("emu wgmma: shared memory changed before the covering wait_group aborts",
             aborts([&] { run(kSmemRace); }));
  check_true("emu wgmma: accumulator registers written while the op is in flight abort",
             aborts([&] { run(kAccWrite); }));
  check_true("emu wgmma: cp.async data read without fence.proxy.async aborts", aborts([&] { run(kNoProxyFence); }));
  check_true("emu wgmma: a descriptor start that is not 16-byte aligned aborts", aborts([&] { run(kMisaligned); }));
  check_true("emu wgmma: a warp of the warpgroup skipping the op is a deadlock report (abort)",
             aborts([&] { run(kWarpMissing); }));

  std::vector<int> bo(256, -1);
  cuda_launch(bar_sync_kernel, dim3(1), dim3(256), 0, nullptr, bo.data(), 128);
  bool bar = true;
  for (int t = 0; t < 256; t++) bar &= bo[size_t(t)] == ((t / 128) * 128 + (t + 37) % 128) * 3;
  check_true("emu bar.sync id, 128: each warpgroup sees its own 128 threads' writes", bar);
  check_true("emu bar.sync with a count no warpgroup reaches is a deadlock report (abort)",
             aborts([&] { cuda_launch(bar_sync_kernel, dim3(1), dim3(256), 0, nullptr, bo.data(), 160); }));
}

VR_TEST(cuda_emu_bar_arrive) {
  std::vector<int> out(128 * kRounds, -7);
  auto run = [&](int mode) {
    return cuda_launch(bar_arrive_kernel, dim3(1), dim3(256), 0, nullptr, out.data(), mode);
  };
  run(kArriveOk);
  bool ordered = true;
  for (int r = 0; r < kRounds; r++)
    for (int t = 0; t < 128; t++) ordered &= out[size_t(128 * r + t)] == 1000 * r + (t + 128 - 45) % 128;
  check_true("emu bar.arrive / bar.sync: each of " + std::to_string(kRounds) +
                 " rounds the consumer warpgroup reads exactly the producer's values of that round (ids reused)",
             ordered);
  check_true("emu bar.arrive: a warp's arrivals missing is a deadlock report (abort)",
             aborts([&] { run(kArriveMissing); }));
  check_true("emu bar.arrive: a count differing from the syncs' aborts", aborts([&] { run(kArriveCountMismatch); }));
  check_true("emu bar.arrive: a thread arriving twice in one phase (over-arrival) aborts",
             aborts([&] { run(kArriveTwice); }));
  check_true("emu bar.arrive: a block ending with a phase partly arrived aborts",
             aborts([&] { run(kArriveLeftover); }));
}

VR_TEST(cuda_emu_wgmma_happens_before) {
  std::vector<__nv_bfloat16> ones(8, __float2bfloat16(1.f));
  std::vector<float> out(128, 0.f);
  auto run = [&](int mode) {
    return cuda_launch(hb_kernel, dim3(1), dim3(256), (64 + 32) * 16 * 2, nullptr, out.data(), ones.data(), mode);
  };
  run(kHbOk);
  bool ok = true;
  for (int t = 0; t < 128; t++) ok &= out[size_t(t)] == 16.f;
  check_true("emu wgmma: another warpgroup's cp.async landings, fenced and then published by bar.arrive / bar.sync, "
             "are read (D = 16)",
             ok);
  check_true("emu wgmma: landings fenced after the lander's arrival (no barrier phase publishes them) abort",
             aborts([&] { run(kHbArriveFirst); }));
  std::fill(out.begin(), out.end(), 0.f);
  run(kHbRefillOk);
  ok = true;
  for (int t = 0; t < 128; t++) ok &= out[size_t(t)] == 16.f;
  check_true("emu wgmma: tiles refilled by cp.async after a barrier that the reading warpgroup arrived at once its "
             "wait_group retired the read: no abort (D = 16)",
             ok);
  check_true("emu wgmma: a refill issued after a barrier the reader arrived at BEFORE its wait_group aborts at the "
             "cp.async", aborts([&] { run(kHbRefillEarly); }));
  check_true("emu wgmma: a refill issued with no barrier after the reader's wait_group aborts",
             aborts([&] { run(kHbRefillNoBarrier); }));
}

}  // namespace vr::test
