// CUDA-on-CPU emulator, part 2: what device code sees - the CUDA keywords, built-in index variables, warp
// shuffles and votes, atomics and the math intrinsics our kernels use. Include through cuda_emu.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <link.h>

#include <vector>

#include <cuda_bf16.h>  // compiles with plain g++: host conversions and operators for __nv_bfloat16

#include "cuda_emu/emu_scheduler.h"

// ---- keywords: the toolkit headers define them for the host compiler; make them plain C++ ------------------
#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __constant__
#undef __forceinline__
#undef __noinline__
#undef __launch_bounds__
#undef __restrict__
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
// All fibers of a block share one OS thread, while blocks on other OS threads get their own copy: a static
// thread_local is exactly block-shared storage. (CUDA forbids initialisers on __shared__, so no init runs.)
#define __shared__ static thread_local

namespace cudaemu {

// ---- warp shuffles and votes ---------------------------------------------------------------------------
template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

// Value of lane `src` from this exchange, or die when that lane did not take part (undefined on a GPU).
template <class T>
T shfl_read(unsigned mask, const uint64_t* vals, int src) {
  if (!(mask >> src & 1u)) die("shuffle reads a lane that is not in the mask");
  return from_bits<T>(vals[src]);
}

inline void check_width(int width) {
  if (width < 1 || width > 32 || (width & (width - 1))) die("shuffle width must be a power of two <= 32");
}

}  // namespace cudaemu

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  cudaemu::check_width(width);
  const int lane = cudaemu::cur().lane;
  const uint64_t* v = cudaemu::warp_exchange(mask, cudaemu::to_bits(var));
  return cudaemu::shfl_read<T>(mask, v, (lane & ~(width - 1)) + (src_lane & (width - 1)));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  cudaemu::check_width(width);
  const int lane = cudaemu::cur().lane, src = lane ^ lane_mask;
  const uint64_t* v = cudaemu::warp_exchange(mask, cudaemu::to_bits(var));
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) return var;  // outside the caller's segment
  return cudaemu::shfl_read<T>(mask, v, src);
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  cudaemu::check_width(width);
  const int lane = cudaemu::cur().lane, src = lane + int(delta);
  const uint64_t* v = cudaemu::warp_exchange(mask, cudaemu::to_bits(var));
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) return var;
  return cudaemu::shfl_read<T>(mask, v, src);
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  cudaemu::check_width(width);
  const int lane = cudaemu::cur().lane, src = lane - int(delta);
  const uint64_t* v = cudaemu::warp_exchange(mask, cudaemu::to_bits(var));
  if (src < 0 || (src & ~(width - 1)) != (lane & ~(width - 1))) return var;
  return cudaemu::shfl_read<T>(mask, v, src);
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
  const uint64_t* v = cudaemu::warp_exchange(mask, pred ? 1u : 0u);
  unsigned r = 0;
  for (int l = 0; l < 32; l++)
    if ((mask >> l & 1u) && v[l]) r |= 1u << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }
inline void __syncwarp(unsigned mask = 0xffffffffu) { cudaemu::warp_exchange(mask, 0); }
// Approximation: the emulator does not track divergence, so this is the set of lanes that have not exited.
inline unsigned __activemask() {
  const cudaemu::Block& b = cudaemu::blk();
  const int base = cudaemu::cur().warp * 32;
  unsigned m = 0;
  for (int l = 0; l < 32 && base + l < b.nthreads; l++)
    if (b.fibers[size_t(base + l)].st != cudaemu::FiberState::Done) m |= 1u << l;
  return m;
}

namespace cudaemu {
// ---- bank-conflict accounting glue (emu_banks.h): the calling lane's shared-memory access ---------------------
// Whether p is shared memory: the block's dynamic shared memory, or this OS thread's static TLS, where the
// emulator's `__shared__` (static thread_local) arrays live (dl_iterate_phdr's dlpi_tls_data, per module).
inline bool in_static_tls(const void* p) {
  struct Range {
    uintptr_t lo, hi;
  };
  static thread_local std::vector<Range> ranges;
  static thread_local bool known = false;
  if (!known) {
    known = true;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
          if (!info->dlpi_tls_data) return 0;
          for (int i = 0; i < info->dlpi_phnum; i++)
            if (info->dlpi_phdr[i].p_type == PT_TLS) {
              const uintptr_t lo = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
              static_cast<std::vector<Range>*>(out)->push_back({lo, lo + info->dlpi_phdr[i].p_memsz});
            }
          return 0;
        },
        &ranges);
  }
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  for (const Range& r : ranges)
    if (a >= r.lo && a < r.hi) return true;
  return false;
}
inline bool is_shared(const void* p) {
  const Block& b = blk();
  const auto* c = static_cast<const unsigned char*>(p);
  return (b.dyn_smem && c >= b.dyn_smem && c < b.dyn_smem + b.dyn_smem_bytes) || in_static_tls(p);
}
// One lane's access of kind `op` at `p`, counted when accounting is on and p is shared memory (callers check
// banks::on() first, so a normal run pays one relaxed load per op).
inline void record_shared_access(banks::Op op, const void* p) {
  if (!is_shared(p)) return;
  const Fiber& f = cur();
  banks::lane_access(op, f.warp, f.lane, __activemask(), reinterpret_cast<uintptr_t>(p));
}
}  // namespace cudaemu

inline void __syncthreads() { cudaemu::syncthreads(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { asm volatile("" ::: "memory"); }

// ---- built-in variables ----------------------------------------------------------------------------------
#define threadIdx (::cudaemu::cur().tid)
#define blockIdx (::cudaemu::blk().idx)
#define blockDim (::cudaemu::blk().dim)
#define gridDim (::cudaemu::blk().grid)
#define warpSize 32

// ---- atomics: real atomics, because blocks run in parallel on several OS threads -------------------------
template <class T>
T atomicAdd(T* addr, T val) {
  if constexpr (std::is_integral<T>::value) {
    return __atomic_fetch_add(addr, val, __ATOMIC_RELAXED);
  } else {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomicAdd: float or double only");
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    U* p = reinterpret_cast<U*>(addr);
    U old = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
      T cur, next;
      std::memcpy(&cur, &old, sizeof(T));
      next = cur + val;
      U nu;
      std::memcpy(&nu, &next, sizeof(T));
      if (__atomic_compare_exchange_n(p, &old, nu, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return cur;
    }
  }
}
template <class T>
T atomicMax(T* addr, T val) {
  static_assert(std::is_integral<T>::value, "atomicMax: integers only (as in CUDA)");
  T old = __atomic_load_n(addr, __ATOMIC_RELAXED);
  while (old < val && !__atomic_compare_exchange_n(addr, &old, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T>
T atomicMin(T* addr, T val) {
  static_assert(std::is_integral<T>::value, "atomicMin: integers only (as in CUDA)");
  T old = __atomic_load_n(addr, __ATOMIC_RELAXED);
  while (old > val && !__atomic_compare_exchange_n(addr, &old, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T>
T atomicCAS(T* addr, T compare, T val) {
  static_assert(std::is_integral<T>::value, "atomicCAS: integers only (as in CUDA)");
  __atomic_compare_exchange_n(addr, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // holds the old value whether or not the exchange happened
}
template <class T>
T atomicExch(T* addr, T val) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomicExch: 4 or 8 bytes");
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U nu, old;
  std::memcpy(&nu, &val, sizeof(T));
  old = __atomic_exchange_n(reinterpret_cast<U*>(addr), nu, __ATOMIC_RELAXED);
  T r;
  std::memcpy(&r, &old, sizeof(T));
  return r;
}

// ---- math intrinsics (the host libm: results differ from GPU fast-math in the last bits) -----------------
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : x > 1.f ? 1.f : x; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
template <class T>
T __ldg(const T* p) { return *p; }
// CUDA's device-side integer min/max overloads (std::min would need --expt-relaxed-constexpr under nvcc).
#define VR_EMU_MINMAX(T)                               \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
VR_EMU_MINMAX(int)
VR_EMU_MINMAX(unsigned)
VR_EMU_MINMAX(long)
VR_EMU_MINMAX(unsigned long)
VR_EMU_MINMAX(long long)
VR_EMU_MINMAX(unsigned long long)
VR_EMU_MINMAX(float)
VR_EMU_MINMAX(double)
#undef VR_EMU_MINMAX
