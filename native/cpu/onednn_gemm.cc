// oneDNN matmul wrapper with a process-wide primitive cache. See onednn_gemm.h.
#include "cpu/onednn_gemm.h"

#include <cstdlib>

#include "core/error.h"

#ifdef VREFLECT_HAVE_DNNL
#include <algorithm>
#include <cstring>
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

PackedWeight::~PackedWeight() { std::free(data); }

#ifdef VREFLECT_HAVE_DNNL

namespace {

using dt = dnnl::memory::data_type;

// The thread count is part of the key: oneDNN fixes its work split when a primitive is created. Packed B:
// b_rs = b_cs = -1 (its layout is a function of N and K on one machine).
// Epilogue bits: 1 = bf16 C, 2 = swish, 4 = multiply by a bf16 tensor.
using Key = std::tuple<int64_t, int64_t, int64_t, bool, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, int, int>;

int epilogue_bits(const MatmulArgs& a) { return (a.c_bf16 ? 1 : 0) | (a.swish ? 2 : 0) | (a.mul16 ? 4 : 0); }
dt c_type(const MatmulArgs& a) { return a.c_bf16 ? dt::bf16 : dt::f32; }

const dnnl::memory::desc& packed_desc(const PackedWeight& w) {
  return *static_cast<const dnnl::memory::desc*>(w.desc.get());
}

dnnl::memory::desc b_desc(const MatmulArgs& a) {
  if (a.b_packed) return packed_desc(*a.b_packed);
  return dnnl::memory::desc({a.K, a.N}, a.bf16 ? dt::bf16 : dt::f32, {a.b_rs, a.b_cs});
}

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
  const int64_t brs = a.b_packed ? -1 : a.b_rs, bcs = a.b_packed ? -1 : a.b_cs;
  const Key key{a.M, a.N,   a.K,   a.bf16,           a.a_rs,       a.a_cs,
                brs, bcs,   a.ldc, a.bias != nullptr, a.accumulate, omp_max_threads(), epilogue_bits(a)};
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = cache().find(key);
  if (it != cache().end()) return it->second;
  const dt in = a.bf16 ? dt::bf16 : dt::f32;
  dnnl::memory::desc a_md({a.M, a.K}, in, {a.a_rs, a.a_cs});
  dnnl::memory::desc b_md = b_desc(a);
  dnnl::memory::desc c_md({a.M, a.N}, c_type(a), {a.ldc, 1});
  dnnl::primitive_attr attr;
  dnnl::post_ops po;
  if (a.accumulate) po.append_sum(1.0f);
  if (a.swish) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
  if (a.mul16) po.append_binary(dnnl::algorithm::binary_mul, dnnl::memory::desc({a.M, a.N}, dt::bf16, {a.ldc, 1}));
  if (po.len() > 0) attr.set_post_ops(po);
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
  VR_CHECK(!a.b_packed || (a.bf16 && a.b_packed->N == a.N && a.b_packed->K == a.K),
           "oneDNN matmul: packed weight ", a.b_packed ? a.b_packed->N : 0, "x", a.b_packed ? a.b_packed->K : 0,
           " does not match the problem ", a.N, "x", a.K);
  const Entry& e = get_entry(a);
  const dt in = a.bf16 ? dt::bf16 : dt::f32;
  dnnl::engine& eng = cpu_engine();
  // Memory objects wrap the caller's buffers (no copy); descriptors must equal the primitive's.
  dnnl::memory am({{a.M, a.K}, in, {a.a_rs, a.a_cs}}, eng, const_cast<void*>(a.A));
  dnnl::memory bm(b_desc(a), eng, const_cast<void*>(a.b_packed ? a.b_packed->data : a.B));
  dnnl::memory cm({{a.M, a.N}, c_type(a), {a.ldc, 1}}, eng, a.C);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  if (a.mul16) {
    const int idx = a.accumulate ? 1 : 0;  // the binary post-op's position (after the sum, when there is one)
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1,
                 dnnl::memory({{a.M, a.N}, dt::bf16, {a.ldc, 1}}, eng, const_cast<uint16_t*>(a.mul16)));
  }
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

const char* onednn_matmul_impl(const MatmulArgs& a) { return get_entry(a).impl.c_str(); }

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

namespace {
// W[N,K] -> BA16a64b2a (layout in packed_weight.h), panels [p0, p1). A k-pair is 4 bytes; each row's pairs go
// to a column of the panel's blocks. Out-of-range rows and k are zero.
void pack_vnni64_panels(uint16_t* dst, const uint16_t* W, int64_t N, int64_t K, int64_t kpad, int64_t p0,
                        int64_t p1) {
#pragma omp parallel for schedule(static)
  for (int64_t p = p0; p < p1; p++) {
    uint32_t* panel = reinterpret_cast<uint32_t*>(dst + p * kpad * 64);
    for (int64_t r = 0; r < 64; r++) {
      const int64_t n = p * 64 + r;
      for (int64_t kp = 0; kp < kpad / 2; kp++) {  // k-pair index
        uint16_t two[2] = {0, 0};
        if (n < N) {
          const int64_t k = 2 * kp;
          if (k < K) two[0] = W[n * K + k];
          if (k + 1 < K) two[1] = W[n * K + k + 1];
        }
        uint32_t v;
        std::memcpy(&v, two, 4);
        panel[(kp / 16) * 1024 + (kp % 16) * 64 + r] = v;  // block kp/16, pair row kp%16, column r
      }
    }
  }
}
}  // namespace

std::shared_ptr<const PackedWeight> pack_bf16_weight(const uint16_t* W, int64_t N, int64_t K, ConsumedFn consumed) {
  VR_CHECK(N > 0 && K > 0, "pack_bf16_weight: empty weight ", N, "x", K);
  using tag = dnnl::memory::format_tag;
  dnnl::engine& eng = cpu_engine();
  // The layout the bf16 matmul wants for this weight: ask with format_tag::any (M does not change it; 256 is
  // a typical prefill block).
  const dnnl::memory::desc a_md({256, K}, dt::bf16, {K, 1});
  const dnnl::memory::desc any_md({K, N}, dt::bf16, tag::any);
  const dnnl::memory::desc c_md({256, N}, dt::f32, {N, 1});
  auto pw = std::make_shared<PackedWeight>();
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, any_md, c_md), eng);
    auto md = std::make_shared<dnnl::memory::desc>(pd.weights_desc());
    pw->N = N;
    pw->K = K;
    pw->bytes = md->get_size();
    pw->data = std::aligned_alloc(64, (pw->bytes + 63) / 64 * 64);
    VR_CHECK(pw->data != nullptr, "pack_bf16_weight: out of memory for ", pw->bytes, " bytes");
    pw->desc = md;
    const dnnl::memory::desc vnni({K, N}, dt::bf16, tag::BA16a64b2a);
    if (*md == vnni) {  // the tag fixes the layout: K padded to 32 (16a x 2a), N to 64, dense blocks
      pw->vnni64 = true;
      pw->k_pad = (K + 31) / 32 * 32;
      pw->n_pad = (N + 63) / 64 * 64;
      pw->n_block_stride = pw->k_pad * 64;
      VR_CHECK(pw->bytes == size_t(pw->k_pad * pw->n_pad) * 2, "pack_bf16_weight: unexpected BA16a64b2a size ",
               pw->bytes, " for ", N, "x", K);
      // Our own packer (a plain 4-byte transpose, faster than the generic reorder), ~16 MB of source per
      // group so the caller can release what has been read.
      const int64_t panels = pw->n_pad / 64;
      const int64_t group = std::max<int64_t>(1, (int64_t(16) << 20) / (64 * K * 2));
      for (int64_t p0 = 0; p0 < panels; p0 += group) {
        const int64_t p1 = std::min(panels, p0 + group);
        pack_vnni64_panels(static_cast<uint16_t*>(pw->data), W, N, K, pw->k_pad, p0, p1);
        const int64_t r0 = p0 * 64, r1 = std::min(N, p1 * 64);
        if (consumed && r1 > r0) consumed(W + r0 * K, size_t((r1 - r0) * K) * 2);
      }
    } else {  // another layout (AMX, other ISAs): oneDNN's reorder, then the whole source is done
      std::memset(pw->data, 0, pw->bytes);
      const dnnl::memory::desc src_md({K, N}, dt::bf16, {1, K});  // W[N,K] seen as [K,N]: oneDNN "ba"
      dnnl::memory src(src_md, eng, const_cast<uint16_t*>(W));
      dnnl::memory dst(*md, eng, pw->data);
      dnnl::stream s(eng);
      dnnl::reorder(src, dst).execute(s, src, dst);
      s.wait();
      if (consumed) consumed(W, size_t(N * K) * 2);
    }
  } catch (const dnnl::error& err) {
    fail("oneDNN weight packing ", N, "x", K, " failed: ", err.what());
  }
  return pw;
}

bool weight_packing_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("VREFLECT_PACK_WEIGHTS");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

#else  // !VREFLECT_HAVE_DNNL

std::shared_ptr<const PackedWeight> pack_bf16_weight(const uint16_t*, int64_t, int64_t, ConsumedFn) { return nullptr; }
bool weight_packing_enabled() { return false; }

bool onednn_available() { return false; }
const char* onednn_matmul(const MatmulArgs&) { fail("oneDNN is not built in (install libdnnl-dev and rebuild)"); }
const char* onednn_matmul_impl(const MatmulArgs&) { return ""; }
std::string onednn_impl_name(bool) { return ""; }

#endif

}  // namespace vr::cpu
