// Tests of the CUDA-on-CPU emulator itself (native/cuda_emu): barriers, shared memory, shuffles and votes,
// atomics across concurrently running blocks, launch checks, and deadlock detection. Expected values are
// computed on the host from CUDA's documented semantics, not from the emulator.
#include <cstdio>
#include <vector>

#include "cuda_emu/cuda_compat.h"
#include "cuda/kernels/mma.cuh"
#include "cuda_tests/emu_aborts.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

// Block sum in shared memory, then one atomicAdd per block (blocks run on several OS threads at once).
__global__ void sum_kernel(const float* x, int n, float* total) {
  __shared__ float part[256];
  float s = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(total, part[0]);
}

// Every shuffle flavour; out[7 * t + k] for thread t.
__global__ void shuffle_kernel(int* out) {
  const int t = threadIdx.x, lane = t % 32;
  int* o = out + 7 * t;
  o[0] = __shfl_sync(0xffffffffu, t * 10, (lane * 7) % 32);
  o[1] = __shfl_xor_sync(0xffffffffu, t * 10, 5);
  o[2] = __shfl_up_sync(0xffffffffu, t * 10, 3, 8);
  o[3] = __shfl_down_sync(0xffffffffu, t * 10, 2, 16);
  o[4] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  if (lane < 16) {  // divergent: only the low half-warp takes part
    o[5] = int(__ballot_sync(0x0000ffffu, lane >= 8));
    o[6] = __all_sync(0x0000ffffu, lane < 16) * 2 + __any_sync(0x0000ffffu, lane == 40);
  } else {
    o[5] = -1;
    o[6] = -1;
  }
}

// 2-D blocks: transpose through a padded shared tile.
__global__ void transpose_kernel(float* out, const float* in, int rows, int cols) {
  __shared__ float tile[16][17];
  const int c = blockIdx.x * 16 + threadIdx.x, r = blockIdx.y * 16 + threadIdx.y;
  if (r < rows && c < cols) tile[threadIdx.y][threadIdx.x] = in[r * cols + c];
  __syncthreads();
  const int oc = blockIdx.y * 16 + threadIdx.x, orow = blockIdx.x * 16 + threadIdx.y;
  if (orow < cols && oc < rows) out[orow * rows + oc] = tile[threadIdx.x][threadIdx.y];
}

// Dynamic shared memory: reverse a block's slice.
__global__ void reverse_kernel(int* data, int per_block) {
  CUDA_DYNAMIC_SHARED(int, buf);
  int* d = data + blockIdx.x * per_block;
  for (int i = threadIdx.x; i < per_block; i += blockDim.x) buf[i] = d[i];
  __syncthreads();
  for (int i = threadIdx.x; i < per_block; i += blockDim.x) d[i] = buf[per_block - 1 - i];
}

// Half of each warp waits at __syncthreads, the other half at a full-warp shuffle: neither can complete.
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x % 32 < 16) __syncthreads();
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0);
}
__global__ void bad_mask_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, 1, 0); }
// A 16-byte vector copy (load16 + store16) from src + offset (bf16 elements) to dst.
__global__ void vector_copy_kernel(__nv_bfloat16* dst, const __nv_bfloat16* src, int offset) {
  vr::cuda::mma::store16(dst, vr::cuda::mma::load16(src + offset));
}
__global__ void pair_load_kernel(uint32_t* out, const __nv_bfloat16* src, int offset) {
  *out = vr::cuda::mma::ld_pair(src + offset);
}

}  // namespace

VR_TEST(cuda_emu_selftest) {
  {
    const int n = 100000;
    std::vector<float> x(n);
    for (int i = 0; i < n; i++) x[i] = float(i % 1000);
    float total = 0;
    const cudaError_t e = cuda_launch(sum_kernel, dim3(37), dim3(256), 0, nullptr, x.data(), n, &total);
    check_true("emu: grid-stride block sum + atomicAdd over 37 blocks", e == cudaSuccess && total == 49950000.f);
  }
  {
    const int T = 64;
    std::vector<int> out(size_t(7 * T), 0);
    cuda_launch(shuffle_kernel, dim3(1), dim3(T), 0, nullptr, out.data());
    bool ok = true;
    for (int t = 0; t < T; t++) {
      const int lane = t % 32, wb = t - lane;
      const int* o = &out[size_t(7 * t)];
      ok &= o[0] == (wb + (lane * 7) % 32) * 10;
      ok &= o[1] == (wb + (lane ^ 5)) * 10;
      ok &= o[2] == (lane % 8 >= 3 ? t - 3 : t) * 10;
      ok &= o[3] == (lane % 16 < 14 ? t + 2 : t) * 10;
      ok &= unsigned(o[4]) == 0x49249249u;
      ok &= lane < 16 ? (o[5] == 0xff00 && o[6] == 2) : (o[5] == -1 && o[6] == -1);
    }
    check_true("emu: shfl/xor/up/down with widths, ballot/all/any in a divergent half-warp", ok);
  }
  {
    const int rows = 37, cols = 50;
    std::vector<float> in(size_t(rows * cols)), out(size_t(rows * cols), -1.f);
    for (size_t i = 0; i < in.size(); i++) in[i] = float(i);
    cuda_launch(transpose_kernel, dim3((cols + 15) / 16, (rows + 15) / 16), dim3(16, 16), 0, nullptr, out.data(),
                in.data(), rows, cols);
    bool ok = true;
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < cols; c++) ok &= out[size_t(c * rows + r)] == in[size_t(r * cols + c)];
    check_true("emu: 2-D blocks, shared tile transpose 37x50", ok);
  }
  {
    const int per_block = 16000, blocks = 3;  // 64000 bytes of dynamic shared memory per block
    std::vector<int> d(size_t(per_block * blocks));
    for (size_t i = 0; i < d.size(); i++) d[i] = int(i);
    const size_t smem = size_t(per_block) * sizeof(int);
    const cudaError_t without = cuda_launch(reverse_kernel, dim3(blocks), dim3(128), smem, nullptr, d.data(), per_block);
    cudaFuncSetAttribute(reverse_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    const cudaError_t with = cuda_launch(reverse_kernel, dim3(blocks), dim3(128), smem, nullptr, d.data(), per_block);
    bool ok = without == cudaErrorInvalidValue && with == cudaSuccess;
    for (int b = 0; b < blocks; b++)
      for (int i = 0; i < per_block; i++) ok &= d[size_t(b * per_block + i)] == b * per_block + per_block - 1 - i;
    check_true("emu: > 48 KiB dynamic shared memory fails without cudaFuncSetAttribute, works with it", ok);
  }
  {
    int dummy[64];
    const cudaError_t e = cuda_launch(bad_mask_kernel, dim3(1), dim3(1025), 0, nullptr, dummy);
    check_true("emu: 1025 threads per block is an invalid configuration", e == cudaErrorInvalidConfiguration);
    // Grid limits (scale audit): x < 2^31, y and z <= 65535. Refused before any block runs.
    const cudaError_t ex = cuda_launch(bad_mask_kernel, dim3(0x80000000u), dim3(32), 0, nullptr, dummy);
    const cudaError_t ey = cuda_launch(bad_mask_kernel, dim3(1, 65536), dim3(32), 0, nullptr, dummy);
    const cudaError_t ez = cuda_launch(bad_mask_kernel, dim3(1, 1, 65536), dim3(32), 0, nullptr, dummy);
    check_true("emu: gridDim.x = 2^31, gridDim.y or .z = 65536 are invalid configurations",
               ex == cudaErrorInvalidConfiguration && ey == cudaErrorInvalidConfiguration &&
                   ez == cudaErrorInvalidConfiguration);
  }
  int sink[64];
  check_true("emu: divergent __syncthreads is reported as a deadlock (abort)", aborts([&] {
               cuda_launch(divergent_barrier_kernel, dim3(1), dim3(64), 0, nullptr, sink);
             }));
  check_true("emu: a warp op whose mask omits the calling lane aborts", aborts([&] {
               cuda_launch(bad_mask_kernel, dim3(1), dim3(32), 0, nullptr, sink);
             }));
  // Vector accesses must be aligned to their size, as on a GPU (where memcpy-like tolerance does not exist).
  alignas(16) __nv_bfloat16 src[24], dst[16];
  for (int i = 0; i < 24; i++) src[i] = __float2bfloat16(float(i));
  cuda_launch(vector_copy_kernel, dim3(1), dim3(1), 0, nullptr, dst, src, 8);
  check_true("emu: an aligned 16-byte load / store moves 8 bf16",
             __bfloat162float(dst[0]) == 8.f && __bfloat162float(dst[7]) == 15.f);
  check_true("emu: a 16-byte load from an address that is not 16-byte aligned aborts", aborts([&] {
               cuda_launch(vector_copy_kernel, dim3(1), dim3(1), 0, nullptr, dst, src, 4);
             }));
  check_true("emu: a 16-byte store to an address that is not 16-byte aligned aborts", aborts([&] {
               cuda_launch(vector_copy_kernel, dim3(1), dim3(1), 0, nullptr, dst + 2, src, 0);
             }));
  uint32_t pair = 0;
  cuda_launch(pair_load_kernel, dim3(1), dim3(1), 0, nullptr, &pair, src, 2);
  check_true("emu: an aligned bf16-pair load", pair == (uint32_t(vr::cuda::mma::bf16_bits(src[3])) << 16 |
                                                        vr::cuda::mma::bf16_bits(src[2])));
  check_true("emu: a bf16-pair load from an odd element aborts", aborts([&] {
               cuda_launch(pair_load_kernel, dim3(1), dim3(1), 0, nullptr, &pair, src, 1);
             }));
}

// The stream model (emu_streams.h) against CUDA's documented rules: work on a created stream is late until
// something forces it, pinned buffers are read / written when the copy runs, pageable sources are taken at once.
__global__ void add_one_kernel(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.f;
}

VR_TEST(cuda_emu_streams) {
  const int n = 64;
  float* dev = nullptr;
  float *pin = nullptr, *pin2 = nullptr;
  cudaMalloc(&dev, n * sizeof(float));
  cudaHostAlloc(reinterpret_cast<void**>(&pin), n * sizeof(float), 0);
  cudaHostAlloc(reinterpret_cast<void**>(&pin2), n * sizeof(float), 0);
  std::vector<float> pageable(n, 5.f);
  cudaStream_t copy = nullptr, blocking = nullptr;
  cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
  cudaStreamCreate(&blocking);
  cudaEvent_t ev = nullptr;
  cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);

  for (int i = 0; i < n; i++) pin[i] = 1.f;
  cudaMemcpyAsync(dev, pin, n * sizeof(float), cudaMemcpyHostToDevice, copy);
  for (int i = 0; i < n; i++) pin[i] = 2.f;  // refilled before the copy ran: a GPU may send either; we send the 2s
  cudaEventRecord(ev, copy);
  check_true("emu streams: an async copy on a non-blocking stream has not run before its event is waited on",
             cudaMemcpy(pageable.data(), dev, sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess && pageable[0] != 2.f);
  cudaStreamWaitEvent(nullptr, ev, 0);
  cudaMemcpy(pageable.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost);
  check_true("emu streams: after the wait, the device holds what the pinned buffer held when the copy ran (2)",
             pageable[0] == 2.f && pageable[n - 1] == 2.f);

  cuda_launch(add_one_kernel, dim3(1), dim3(64), 0, nullptr, dev, n);  // dev = 3
  cudaMemcpyAsync(pin2, dev, n * sizeof(float), cudaMemcpyDeviceToHost, copy);
  check_true("emu streams: a device-to-pinned copy lands only when synchronised", pin2[0] != 3.f);
  cudaStreamSynchronize(copy);
  check_true("emu streams: ... and then holds the device's values", pin2[0] == 3.f && pin2[n - 1] == 3.f);

  std::fill(pageable.begin(), pageable.end(), 7.f);
  cudaMemcpyAsync(dev, pageable.data(), n * sizeof(float), cudaMemcpyHostToDevice, blocking);
  std::fill(pageable.begin(), pageable.end(), 8.f);  // pageable source: CUDA took the 7s at the call
  cuda_launch(add_one_kernel, dim3(1), dim3(64), 0, nullptr, dev, n);  // the null stream waits for blocking streams
  cudaMemcpy(pageable.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost);
  check_true("emu streams: a pageable source is taken when queued, and null-stream work waits for a blocking stream",
             pageable[0] == 8.f && pageable[n - 1] == 8.f);

  cudaMemsetAsync(dev, 0, n * sizeof(float), copy);
  cudaMemcpy(pageable.data(), dev, sizeof(float), cudaMemcpyDeviceToHost);
  check_true("emu streams: a memset on a non-blocking stream is not seen by the null stream unsynchronised",
             pageable[0] == 8.f);
  cudaDeviceSynchronize();
  cudaMemcpy(pageable.data(), dev, sizeof(float), cudaMemcpyDeviceToHost);
  check_true("emu streams: cudaDeviceSynchronize runs it", pageable[0] == 0.f);

  cudaMemsetAsync(dev, 0xff, n * sizeof(float), copy);
  cudaFree(dev);  // synchronises first: the queued memset never touches freed memory
  cudaEventDestroy(ev);
  cudaStreamDestroy(copy);
  cudaStreamDestroy(blocking);
  cudaFreeHost(pin);
  cudaFreeHost(pin2);
  check_true("emu streams: destroying streams and events, freeing pinned memory", cudaGetLastError() == cudaSuccess);
}

}  // namespace vr::test
