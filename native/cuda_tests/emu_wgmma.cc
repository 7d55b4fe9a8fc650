// The emulator's wgmma model (cuda/kernels/wgmma.cuh) on what a GPU would do silently or fault on: accumulators
// delivered only at the covering wait_group (read earlier: stale), and aborts for shared memory changed while an op
// is in flight, accumulators written while in flight, cp.async data read without fence.proxy.async, a misaligned
// descriptor, a warp of the warpgroup missing the op (deadlock report); plus bar.sync over one warpgroup.
// Emulator only (emu_*.cc): on a GPU these are undefined behaviour.
#include <cstdio>
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

}  // namespace

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

}  // namespace vr::test
