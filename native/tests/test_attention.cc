// attention_forward / attention_backward against the full-softmax fp64 reference: varlen segments, GQA,
// causal (bottom-right aligned, including decode and Lq > Lk), head dims 16/80/128, fused-qkv strides, lse.
// The bf16 forward (AttnParams::bf16) against the same fp64 reference, with a naive loop that rounds q, k, v
// and P to bf16 as the baseline of the tolerance rule.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "core/dtype.h"
#include "cpu/attention_tiles_bf16.h"
#include "ops/attention.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

namespace {

struct Case {
  std::string name;
  int Hq, Hkv, D;
  bool causal;
  std::vector<int32_t> lq, lk;  // per-segment lengths
  bool fused = false;           // q/k/v as slices of one [T, (Hq+2Hkv)*D] buffer (needs lq == lk)
};

struct Built {
  ref::AttnShape shape;
  std::vector<float> q, k, v;  // dense [T, H, D]
};

Built build(const Case& c, uint64_t seed) {
  Built b;
  b.shape.Hq = c.Hq;
  b.shape.Hkv = c.Hkv;
  b.shape.D = c.D;
  b.shape.scale = 1.0 / std::sqrt(double(c.D));
  b.shape.causal = c.causal;
  b.shape.cu_q = {0};
  b.shape.cu_k = {0};
  for (size_t s = 0; s < c.lq.size(); s++) {
    b.shape.cu_q.push_back(b.shape.cu_q.back() + c.lq[s]);
    b.shape.cu_k.push_back(b.shape.cu_k.back() + c.lk[s]);
  }
  Rng rng(seed);
  // Scores of a few units give softmaxes that are neither flat nor one-hot.
  b.q = rng.vec(size_t(b.shape.Tq() * c.Hq * c.D), -2, 2);
  b.k = rng.vec(size_t(b.shape.Tk() * c.Hkv * c.D), -2, 2);
  b.v = rng.vec(size_t(b.shape.Tk() * c.Hkv * c.D));
  return b;
}

AttnParams params(const Case& c, const Built& b) {
  AttnParams p;
  p.Hq = c.Hq;
  p.Hkv = c.Hkv;
  p.D = c.D;
  p.scale = float(b.shape.scale);
  p.causal = c.causal;
  p.nseq = int(c.lq.size());
  p.cu_q = b.shape.cu_q.data();
  p.cu_k = b.shape.cu_k.data();
  p.q_stride = p.o_stride = int64_t(c.Hq) * c.D;
  p.k_stride = p.v_stride = int64_t(c.Hkv) * c.D;
  return p;
}

// Fused layout helpers: row t of the fused buffer is [q(Hq*D) | k(Hkv*D) | v(Hkv*D)].
struct Fused {
  int64_t stride;
  std::vector<float> buf;
  float* q() { return buf.data(); }
  float* k(int64_t qd) { return buf.data() + qd; }
  float* v(int64_t qd, int64_t kd) { return buf.data() + qd + kd; }
};

Fused fuse(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int64_t T,
           int64_t qd, int64_t kd) {
  Fused f{qd + 2 * kd, std::vector<float>(size_t(T * (qd + 2 * kd)))};
  for (int64_t t = 0; t < T; t++) {
    std::copy(&q[size_t(t * qd)], &q[size_t(t * qd + qd)], &f.buf[size_t(t * f.stride)]);
    std::copy(&k[size_t(t * kd)], &k[size_t(t * kd + kd)], &f.buf[size_t(t * f.stride + qd)]);
    std::copy(&v[size_t(t * kd)], &v[size_t(t * kd + kd)], &f.buf[size_t(t * f.stride + qd + kd)]);
  }
  return f;
}

std::vector<float> unfuse(const Fused& f, int64_t T, int64_t off, int64_t width) {
  std::vector<float> r(static_cast<size_t>(T * width));
  for (int64_t t = 0; t < T; t++)
    std::copy(&f.buf[size_t(t * f.stride + off)], &f.buf[size_t(t * f.stride + off + width)], &r[size_t(t * width)]);
  return r;
}

// Rows that see no key must give lse == -inf exactly; they are checked here and then zeroed in all three
// buffers so that the tolerance rule compares the finite rows only.
bool split_masked_lse(const std::string& what, std::vector<float>& ours, std::vector<float>& naive,
                      std::vector<double>& ref) {
  const double ninf = -std::numeric_limits<double>::infinity();
  size_t masked = 0, wrong = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    if (ref[i] != ninf) continue;
    masked++;
    if (double(ours[i]) != ninf) wrong++;
    ours[i] = naive[i] = 0.f;
    ref[i] = 0;
  }
  if (masked == 0) return true;
  return check_true(what + " lse is -inf for the " + std::to_string(masked) + " rows without visible keys" +
                        (wrong ? " (" + std::to_string(wrong) + " wrong)" : ""),
                    wrong == 0);
}

void forward_case(const Case& c, uint64_t seed) {
  Built b = build(c, seed);
  AttnParams p = params(c, b);
  const int64_t Tq = b.shape.Tq(), qd = int64_t(c.Hq) * c.D, kd = int64_t(c.Hkv) * c.D;
  std::vector<float> out(size_t(Tq * qd), 7.f), lse(size_t(c.Hq * Tq), 7.f);
  if (c.fused) {
    Fused f = fuse(b.q, b.k, b.v, Tq, qd, kd);
    p.q_stride = p.k_stride = p.v_stride = f.stride;
    Fused o{f.stride, std::vector<float>(f.buf.size(), 7.f)};  // out written into the q slot of a fused buffer
    p.o_stride = f.stride;
    attention_forward(o.q(), lse.data(), f.q(), f.k(qd), f.v(qd, kd), p);
    out = unfuse(o, Tq, 0, qd);
    // the rest of the fused output buffer must be untouched
    bool untouched = true;
    for (int64_t t = 0; t < Tq; t++)
      for (int64_t i = qd; i < f.stride; i++) untouched &= o.buf[size_t(t * f.stride + i)] == 7.f;
    check_true(c.name + " leaves the rest of a strided output untouched", untouched);
  } else {
    attention_forward(out.data(), lse.data(), b.q.data(), b.k.data(), b.v.data(), p);
  }
  std::vector<double> rout(out.size()), rlse(lse.size());
  ref::attention<double>(rout, rlse, to_double(b.q), to_double(b.k), to_double(b.v), b.shape);
  std::vector<float> nout(out.size()), nlse(lse.size());
  ref::attention<float>(nout, nlse, b.q, b.k, b.v, b.shape);
  check_rule(c.name + " out", out.data(), nout.data(), rout.data(), out.size(), 1e-6);
  split_masked_lse(c.name, lse, nlse, rlse);
  check_rule(c.name + " lse", lse.data(), nlse.data(), rlse.data(), lse.size(), 1e-6);
}

std::vector<float> bf16_round(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i] = bf16_to_f32(f32_to_bf16(v[i]));
  return r;
}

// bf16 attention: err vs fp64 (exact inputs) <= 2 x err of the naive loop with q, k, v and P rounded to bf16;
// and vs fp64 on the rounded q, k, v (only P rounding and accumulation order remain) against the same loop.
// Where the bf16 tiles run (AVX-512-BF16, D % 16 == 0) the result must also differ from the fp32 kernel's,
// so a silent fallback cannot pass as the bf16 path.
void forward_case_bf16(const Case& c, uint64_t seed) {
  Built b = build(c, seed);
  AttnParams p = params(c, b);
  p.bf16 = true;
  const int64_t Tq = b.shape.Tq(), qd = int64_t(c.Hq) * c.D, kd = int64_t(c.Hkv) * c.D;
  std::vector<float> out(size_t(Tq * qd), 7.f), lse(size_t(c.Hq * Tq), 7.f);
  if (c.fused) {
    Fused f = fuse(b.q, b.k, b.v, Tq, qd, kd);
    p.q_stride = p.k_stride = p.v_stride = p.o_stride = f.stride;
    Fused o{f.stride, std::vector<float>(f.buf.size(), 7.f)};
    attention_forward(o.q(), lse.data(), f.q(), f.k(qd), f.v(qd, kd), p);
    out = unfuse(o, Tq, 0, qd);
  } else {
    attention_forward(out.data(), lse.data(), b.q.data(), b.k.data(), b.v.data(), p);
  }
  const std::vector<float> q16 = bf16_round(b.q), k16 = bf16_round(b.k), v16 = bf16_round(b.v);
  std::vector<double> rout(out.size()), rlse(lse.size()), rout16(out.size()), rlse16(lse.size());
  ref::attention<double>(rout, rlse, to_double(b.q), to_double(b.k), to_double(b.v), b.shape);
  ref::attention<double>(rout16, rlse16, to_double(q16), to_double(k16), to_double(v16), b.shape);
  std::vector<float> nout(out.size()), nlse(lse.size());
  ref::attention<float>(nout, nlse, q16, k16, v16, b.shape, /*round_p=*/true);
  const std::string name = c.name + " bf16";
  const bool tiles = cpu::bf16attn::available(c.D);  // else the fp32 kernel runs (no rounding at all)
  check_rule(name + " out", out.data(), nout.data(), rout.data(), out.size(), 1e-6);
  std::vector<float> lse2 = lse, nlse2 = nlse;
  split_masked_lse(name, lse, nlse, rlse);
  check_rule(name + " lse", lse.data(), nlse.data(), rlse.data(), lse.size(), 1e-6);
  if (tiles) {
    check_rule(name + " out (fp64 on bf16 q/k/v)", out.data(), nout.data(), rout16.data(), out.size(), 1e-6);
    split_masked_lse(name + " (bf16 q/k/v)", lse2, nlse2, rlse16);
    check_rule(name + " lse (fp64 on bf16 q/k/v)", lse2.data(), nlse2.data(), rlse16.data(), lse2.size(), 1e-6);
  }
  if (tiles && Tq > 0) {
    p = params(c, b);
    std::vector<float> out32(size_t(Tq * qd));
    attention_forward(out32.data(), nullptr, b.q.data(), b.k.data(), b.v.data(), p);
    check_true(name + " ran the bf16 tiles (result differs from the fp32 kernel)", out32 != out);
  }
}

void backward_case(const Case& c, uint64_t seed) {
  Built b = build(c, seed);
  AttnParams p = params(c, b);
  const int64_t Tq = b.shape.Tq(), Tk = b.shape.Tk(), qd = int64_t(c.Hq) * c.D, kd = int64_t(c.Hkv) * c.D;
  Rng rng(seed + 1000);
  const auto dout = rng.vec(static_cast<size_t>(Tq * qd));
  const auto dq0 = rng.vec(b.q.size()), dk0 = rng.vec(b.k.size()), dv0 = rng.vec(b.v.size());
  std::vector<float> out(static_cast<size_t>(Tq * qd)), lse(static_cast<size_t>(c.Hq * Tq));
  std::vector<float> dq = dq0, dk = dk0, dv = dv0;
  if (c.fused) {
    Fused f = fuse(b.q, b.k, b.v, Tq, qd, kd);
    Fused g = fuse(dq0, dk0, dv0, Tq, qd, kd);
    Fused fo = fuse(out, std::vector<float>(static_cast<size_t>(Tq * kd)), std::vector<float>(static_cast<size_t>(Tq * kd)), Tq, qd, kd);
    Fused fd = fuse(dout, std::vector<float>(static_cast<size_t>(Tq * kd)), std::vector<float>(static_cast<size_t>(Tq * kd)), Tq, qd, kd);
    p.q_stride = p.k_stride = p.v_stride = p.o_stride = f.stride;
    attention_forward(fo.q(), lse.data(), f.q(), f.k(qd), f.v(qd, kd), p);
    attention_backward(g.q(), g.k(qd), g.v(qd, kd), fd.q(), fo.q(), lse.data(), f.q(), f.k(qd), f.v(qd, kd), p);
    dq = unfuse(g, Tq, 0, qd);
    dk = unfuse(g, Tk, qd, kd);
    dv = unfuse(g, Tk, qd + kd, kd);
  } else {
    attention_forward(out.data(), lse.data(), b.q.data(), b.k.data(), b.v.data(), p);
    attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), out.data(), lse.data(), b.q.data(),
                       b.k.data(), b.v.data(), p);
  }
  std::vector<double> rdq = to_double(dq0), rdk = to_double(dk0), rdv = to_double(dv0);
  ref::attention_backward<double>(rdq, rdk, rdv, to_double(dout), to_double(b.q), to_double(b.k), to_double(b.v),
                                  b.shape);
  std::vector<float> ndq = dq0, ndk = dk0, ndv = dv0;
  ref::attention_backward<float>(ndq, ndk, ndv, dout, b.q, b.k, b.v, b.shape);
  check_rule(c.name + " backward dq", dq.data(), ndq.data(), rdq.data(), dq.size(), 1e-5);
  check_rule(c.name + " backward dk", dk.data(), ndk.data(), rdk.data(), dk.size(), 1e-5);
  check_rule(c.name + " backward dv", dv.data(), ndv.data(), rdv.data(), dv.size(), 1e-5);
}

const std::vector<Case>& forward_cases() {
  static const std::vector<Case> cases = {
      {"varlen 4 segs Hq4:Hkv2 D16", 4, 2, 16, false, {5, 1, 37, 70}, {5, 1, 37, 70}},
      {"varlen 4 segs Hq4:Hkv2 D16 causal", 4, 2, 16, true, {5, 1, 37, 70}, {5, 1, 37, 70}},
      {"GQA 28:4 D128 L150 causal", 28, 4, 128, true, {150}, {150}},
      {"GQA 28:4 D128 L70 not causal", 28, 4, 128, false, {70}, {70}},
      {"decode 28:4 D128 Lq1 Lk200 causal", 28, 4, 128, true, {1}, {200}},
      {"decode 2 segs Lq1 Lk65/Lk3 causal", 28, 4, 128, true, {1, 1}, {65, 3}},
      {"chunk with cache Lq9 Lk140 causal Hq4:Hkv1 D128", 4, 1, 128, true, {9}, {140}},
      {"cross Lq5 Lk3 causal (rows without keys)", 4, 2, 16, true, {5}, {3}},
      {"empty segments", 4, 2, 16, true, {0, 6, 3}, {4, 6, 0}},
      {"ViT windows D80 Hq16 (64,64,16,36)", 16, 16, 80, false, {64, 64, 16, 36}, {64, 64, 16, 36}},
      {"ViT fused qkv D80 Hq16 L100", 16, 16, 80, false, {60, 40}, {60, 40}, true},
      {"fused qkv GQA 4:2 D16 causal", 4, 2, 16, true, {33, 20}, {33, 20}, true},
      {"long keys Hq2:Hkv2 D16 L300 causal", 2, 2, 16, true, {300}, {300}},
      {"portable tiles D24 GQA 6:2 causal", 6, 2, 24, true, {70, 5}, {70, 9}},
      {"portable tiles D40 not causal", 2, 1, 40, false, {20, 65}, {90, 65}},
  };
  return cases;
}

}  // namespace

VR_TEST(attention_forward_cases) {
  uint64_t seed = 300;
  for (const Case& c : forward_cases()) forward_case(c, seed++);
}

// Every forward case again in bf16 (q, k, v, P rounded), plus block edges: odd key counts, D64, D32.
VR_TEST(attention_forward_bf16_cases) {
  std::vector<Case> cases = forward_cases();
  cases.push_back({"odd key blocks Hq3:Hkv1 D64 causal", 3, 1, 64, true, {63, 1, 65}, {63, 1, 129}});
  cases.push_back({"ViT window D80 L1 and L63", 16, 16, 80, false, {1, 63}, {1, 63}});
  cases.push_back({"D32 Hq4:Hkv4 L200 not causal", 4, 4, 32, false, {200}, {200}});
  cases.push_back({"ViT full D80 Hq16 L400", 16, 16, 80, false, {400}, {400}, true});
  uint64_t seed = 700;
  for (const Case& c : cases) forward_case_bf16(c, seed++);
}

VR_TEST(attention_backward_cases) {
  const std::vector<Case> cases = {
      {"varlen Hq4:Hkv2 D16", 4, 2, 16, false, {5, 1, 37, 70}, {5, 1, 37, 70}},
      {"varlen Hq4:Hkv2 D16 causal", 4, 2, 16, true, {5, 1, 37, 70}, {5, 1, 37, 70}},
      {"GQA 28:4 D128 L40 causal", 28, 4, 128, true, {40}, {40}},
      {"decode Lq3 Lk90 causal Hq4:Hkv1 D80", 4, 1, 80, true, {3}, {90}},
      {"cross Lq5 Lk3 causal", 4, 2, 16, true, {5}, {3}},
      {"fused qkv 4:2 D16 causal", 4, 2, 16, true, {33, 20}, {33, 20}, true},
      {"portable tiles D24 GQA 6:2 causal", 6, 2, 24, true, {70, 5}, {70, 9}},
  };
  uint64_t seed = 400;
  for (const Case& c : cases) backward_case(c, seed++);
}

// The fp64 reference gradient itself, against central finite differences of the fp64 forward.
VR_TEST(attention_reference_gradient_fd) {
  const Case c{"fd", 4, 2, 8, true, {3, 6}, {5, 6}};
  Built b = build(c, 900);
  const auto& sh = b.shape;
  const size_t nq = b.q.size(), nk = b.k.size();
  Rng rng(901);
  const std::vector<double> dout = to_double(rng.vec(size_t(sh.Tq() * c.Hq * c.D)));
  std::vector<double> x = to_double(b.q);
  x.insert(x.end(), b.k.begin(), b.k.end());
  x.insert(x.end(), b.v.begin(), b.v.end());
  const std::vector<double> u = to_double(rng.vec(x.size()));
  auto f = [&](const std::vector<double>& xs) {
    std::vector<double> q(xs.begin(), xs.begin() + long(nq)), k(xs.begin() + long(nq), xs.begin() + long(nq + nk)),
        v(xs.begin() + long(nq + nk), xs.end());
    std::vector<double> out(q.size()), lse(size_t(c.Hq * sh.Tq()));
    ref::attention<double>(out, lse, q, k, v, sh);
    return out;
  };
  std::vector<double> dq(nq, 0), dk(nk, 0), dv(nk, 0);
  ref::attention_backward<double>(dq, dk, dv, dout, to_double(b.q), to_double(b.k), to_double(b.v), sh);
  std::vector<double> g = dq;
  g.insert(g.end(), dk.begin(), dk.end());
  g.insert(g.end(), dv.begin(), dv.end());
  check_fd("attention reference gradient", fd_directional(f, x, u, dout), dot(g, u));
}

VR_TEST(attention_bad_input) {
  std::vector<float> buf(64);
  const int32_t cu[2] = {0, 2};
  AttnParams p;
  p.Hq = 3;
  p.Hkv = 2;
  p.D = 4;
  p.nseq = 1;
  p.cu_q = p.cu_k = cu;
  p.q_stride = p.o_stride = 12;
  p.k_stride = p.v_stride = 8;
  expect_throw("attention Hq not a multiple of Hkv",
               [&] { attention_forward(buf.data(), nullptr, buf.data(), buf.data(), buf.data(), p); });
  p.Hq = 4;
  p.q_stride = 8;
  expect_throw("attention q stride < Hq*D",
               [&] { attention_forward(buf.data(), nullptr, buf.data(), buf.data(), buf.data(), p); });
  p.q_stride = p.o_stride = 16;
  const int32_t bad[2] = {2, 0};
  p.cu_q = bad;
  expect_throw("attention decreasing cu_q",
               [&] { attention_forward(buf.data(), nullptr, buf.data(), buf.data(), buf.data(), p); });
  p.cu_q = cu;
  p.bf16 = true;
  expect_throw("attention backward with bf16 (forward-only)", [&] {
    attention_backward(buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), buf.data(),
                       buf.data(), p);
  });
}

}  // namespace vr::test
