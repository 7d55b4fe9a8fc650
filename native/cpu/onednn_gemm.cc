// oneDNN matmul wrapper with a process-wide primitive cache. See onednn_gemm.h.
#include "cpu/onednn_gemm.h"

#include "core/error.h"

#ifdef VREFLECT_HAVE_DNNL
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace vr::cpu {

#ifdef VREFLECT_HAVE_DNNL

namespace {

// The thread count is part of the key: oneDNN fixes its work split when a primitive is created.
using Key = std::tuple<int64_t, int64_t, int64_t, bool, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, int>;

struct Entry {
  dnnl::matmul prim;
  std::string impl;
};

int omp_max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

std::mutex g_mu;
std::map<Key, Entry>& cache() {
  static std::map<Key, Entry> c;
  return c;
}

const Entry& get_entry(const MatmulArgs& a) {
  const Key key{a.M,    a.N,    a.K,   a.bf16,           a.a_rs,       a.a_cs,
                a.b_rs, a.b_cs, a.ldc, a.bias != nullptr, a.accumulate, omp_max_threads()};
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = cache().find(key);
  if (it != cache().end()) return it->second;
  using dt = dnnl::memory::data_type;
  const dt in = a.bf16 ? dt::bf16 : dt::f32;
  dnnl::memory::desc a_md({a.M, a.K}, in, {a.a_rs, a.a_cs});
  dnnl::memory::desc b_md({a.K, a.N}, in, {a.b_rs, a.b_cs});
  dnnl::memory::desc c_md({a.M, a.N}, dt::f32, {a.ldc, 1});
  dnnl::primitive_attr attr;
  if (a.accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.0f);
    attr.set_post_ops(po);
  }
  try {
    dnnl::matmul::primitive_desc pd;
    if (a.bias) {
      dnnl::memory::desc bias_md({1, a.N}, dt::f32, {a.N, 1});
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, c_md), attr, cpu_engine());
    } else {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), attr, cpu_engine());
    }
    Entry e{dnnl::matmul(pd), pd.impl_info_str()};
    return cache().emplace(key, std::move(e)).first->second;
  } catch (const dnnl::error& err) {
    fail("oneDNN matmul ", a.M, "x", a.N, "x", a.K, (a.bf16 ? " bf16" : " f32"), " failed: ", err.what());
  }
}

}  // namespace

bool onednn_available() { return true; }

const char* onednn_matmul(const MatmulArgs& a) {
  const Entry& e = get_entry(a);
  using dt = dnnl::memory::data_type;
  const dt in = a.bf16 ? dt::bf16 : dt::f32;
  dnnl::engine& eng = cpu_engine();
  // Memory objects wrap the caller's buffers (no copy); descriptors must equal the primitive's.
  dnnl::memory am({{a.M, a.K}, in, {a.a_rs, a.a_cs}}, eng, const_cast<void*>(a.A));
  dnnl::memory bm({{a.K, a.N}, in, {a.b_rs, a.b_cs}}, eng, const_cast<void*>(a.B));
  dnnl::memory cm({{a.M, a.N}, dt::f32, {a.ldc, 1}}, eng, a.C);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  if (a.bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory({{1, a.N}, dt::f32, {a.N, 1}}, eng, const_cast<float*>(a.bias)));
  dnnl::stream s(eng);
  try {
    e.prim.execute(s, args);
    s.wait();
  } catch (const dnnl::error& err) {
    fail("oneDNN matmul execution failed: ", err.what());
  }
  return e.impl.c_str();
}

std::string onednn_impl_name(bool bf16) {
  static std::string names[2];
  static std::once_flag once[2];
  std::call_once(once[bf16 ? 1 : 0], [&] {
    MatmulArgs a;
    a.M = 64; a.N = 256; a.K = 256; a.bf16 = bf16;
    a.a_rs = a.K; a.b_rs = 1; a.b_cs = a.K; a.ldc = a.N;
    names[bf16 ? 1 : 0] = get_entry(a).impl;
  });
  return names[bf16 ? 1 : 0];
}

#else  // !VREFLECT_HAVE_DNNL

bool onednn_available() { return false; }
const char* onednn_matmul(const MatmulArgs&) { fail("oneDNN is not built in (install libdnnl-dev and rebuild)"); }
std::string onednn_impl_name(bool) { return ""; }

#endif

}  // namespace vr::cpu
