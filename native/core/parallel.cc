// Thread count (one process-wide setting, applied to every thread that runs kernels) and CPU detection.
#include "core/parallel.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace vr {

namespace {
// 0 = not set yet: use the OpenMP default (OMP_NUM_THREADS or the core count).
std::atomic<int> g_threads{0};
}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  g_threads.store(n);
#ifdef _OPENMP
  // omp_set_num_threads only changes the calling thread's setting; kernels running on other threads
  // (N-API workers) re-apply g_threads through apply_num_threads(). oneDNN is built on the OpenMP runtime
  // (Debian's libdnnl), so it follows the same setting; it has no separate thread count to set.
  omp_set_num_threads(n);
#endif
}

int num_threads() {
  int n = g_threads.load();
  if (n > 0) return n;
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void apply_num_threads() {
#ifdef _OPENMP
  int n = g_threads.load();
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

// Linux keeps AMX tile data off until a process asks for it (arch_prctl ARCH_REQ_XCOMP_PERM). Asking here
// tells whether the kernel permits it; oneDNN makes the same request before it runs AMX code.
bool os_permits_amx() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
  return false;
#endif
}
#endif

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      if (c == std::string::npos) break;
      size_t s = line.find_first_not_of(" \t", c + 1);
      return s == std::string::npos ? std::string() : line.substr(s);
    }
  }
  return "unknown";
}

CpuFeatures detect() {
  CpuFeatures f;
  f.model = cpu_model_name();
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;              // SSE + AVX state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;         // + opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & (3ull << 17)) == (3ull << 17);  // XTILECFG + XTILEDATA
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = os_avx && fma && ((b >> 5) & 1);
  // The AVX-512 kernels also use BW/DQ/VL, so require them together with F.
  f.avx512f = os_avx512 && ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  const bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avx512_bf16 = f.avx512f && ((a1 >> 5) & 1);
  f.amx_bf16 = amx_bf16 && amx_tile && os_amx && os_permits_amx();
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace vr
