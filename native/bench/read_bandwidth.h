// Memory read bandwidth probe for the decode roofline (weight bytes per token / read bandwidth): T threads
// each stream their slice of a buffer much larger than the last-level cache, summing 64-bit words so nothing
// can be optimised away. Header-only so the addon's bench binding needs no extra build entry.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "core/error.h"

namespace vr::bench {

struct BandwidthResult {
  double best_gbps = 0, median_gbps = 0;
  std::vector<double> runs_gbps;
  int threads = 0;
  uint64_t bytes = 0;
  const char* kernel = "";
};

namespace detail {

__attribute__((target("avx512f"))) inline uint64_t sum_avx512(const uint64_t* p, size_t words) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= words; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  uint64_t s = 0;
  for (uint64_t l : lanes) s += l;
  for (; i < words; i++) s += p[i];
  return s;
}

__attribute__((target("avx2"))) inline uint64_t sum_avx2(const uint64_t* p, size_t words) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= words; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < words; i++) s += p[i];
  return s;
}

inline uint64_t sum_scalar(const uint64_t* p, size_t words) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= words; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
  for (; i < words; i++) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

}  // namespace detail

// Reads `bytes` (rounded down to 4 KiB) `repeats` times with `threads` threads; best and median GB/s (1e9 B/s).
// The figures vary a lot over minutes on shared VMs (2x between quiet and busy moments), so callers should
// measure close to the runs they compare against and report best and median.
inline BandwidthResult measure_read_bandwidth(uint64_t bytes, int repeats, int threads) {
  VR_CHECK(bytes >= (64u << 20), "read bandwidth: the buffer must be at least 64 MiB (got ", bytes, " bytes)");
  VR_CHECK(repeats >= 1 && repeats <= 1000, "read bandwidth: repeats must be in [1, 1000], got ", repeats);
  VR_CHECK(threads >= 1 && threads <= 1024, "read bandwidth: threads must be in [1, 1024], got ", threads);
  bytes &= ~uint64_t(4095);
  void* raw = std::aligned_alloc(4096, bytes);
  if (!raw) fail("read bandwidth: cannot allocate ", bytes, " bytes");
  std::unique_ptr<void, decltype(&std::free)> hold(raw, &std::free);
  const uint64_t* words = static_cast<const uint64_t*>(raw);
  const size_t n = bytes / 8;
  // Touch every page (non-zero data) so the timed passes read memory, not the shared zero page.
  for (size_t i = 0; i < n; i++) static_cast<uint64_t*>(raw)[i] = i * 0x9E3779B97F4A7C15ull;

  uint64_t (*kernel)(const uint64_t*, size_t) = detail::sum_scalar;
  BandwidthResult r;
  r.kernel = "scalar";
  if (__builtin_cpu_supports("avx512f")) { kernel = detail::sum_avx512; r.kernel = "avx512"; }
  else if (__builtin_cpu_supports("avx2")) { kernel = detail::sum_avx2; r.kernel = "avx2"; }

  std::atomic<uint64_t> sink{0};
  const size_t per = (n / threads) & ~size_t(63);  // 512-byte multiples keep every slice 64-byte aligned
  // The first passes over fresh memory run slow on the VMs measured (host-side page population), so three
  // untimed passes come first.
  const int warmup = 3;
  for (int rep = 0; rep < repeats + warmup; rep++) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> secs(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
      pool.emplace_back([&, t] {
        const size_t begin = size_t(t) * per, len = (t == threads - 1) ? n - begin : per;
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        sink.fetch_add(kernel(words + begin, len), std::memory_order_relaxed);
      });
    }
    while (ready.load() < threads) std::this_thread::yield();
    auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep >= warmup) r.runs_gbps.push_back(double(bytes) / s / 1e9);
  }
  std::vector<double> sorted = r.runs_gbps;
  std::sort(sorted.begin(), sorted.end());
  r.best_gbps = sorted.back();
  r.median_gbps = sorted[sorted.size() / 2];
  r.threads = threads;
  r.bytes = bytes;
  if (sink.load() == 42) r.kernel = "";  // keeps the sums alive
  return r;
}

}  // namespace vr::bench
