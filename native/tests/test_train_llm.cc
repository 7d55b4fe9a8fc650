// LLM training forward/backward (model/llm_train): on a small random Qwen2 decoder (GQA, M-RoPE, biases), the
// forward equals the inference LanguageModel and a naive fp64 decoder, packed samples equal separate forwards,
// and every weight gradient (plus the input-embedding gradient) matches central differences of the fp64 decoder.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/language_model.h"
#include "model/llm_train.h"
#include "model/rope_tables.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

namespace {

using DVec = std::vector<double>;

struct TinyLlm {
  TextConfig tc;
  std::vector<TensorRecord> recs;
  std::map<std::string, std::vector<float>> vals;
};

// Random weights written to a scratch safetensors-like blob (the WeightStore only needs byte ranges).
TinyLlm make_tiny(uint64_t seed, const std::string& file) {
  TinyLlm m;
  TextConfig& tc = m.tc;
  tc.hidden = 32;
  tc.layers = 2;
  tc.heads = 4;
  tc.kv_heads = 2;
  tc.head_dim = 8;
  tc.intermediate = 48;
  tc.vocab = 50;
  tc.eps = 1e-6f;
  tc.rope_theta = 1e4f;
  tc.mrope_section[0] = 1;
  tc.mrope_section[1] = 1;
  tc.mrope_section[2] = 2;
  const int64_t D = tc.hidden, F = tc.intermediate, Dq = 32, Dkv = 16;
  Rng rng(seed);
  auto add = [&](const std::string& n, std::vector<int64_t> shape, double lo, double hi) {
    int64_t k = 1;
    for (int64_t d : shape) k *= d;
    m.vals[n] = rng.vec(size_t(k), lo, hi);
    TensorRecord r;
    r.name = n;
    r.file = file;
    r.dtype = DType::F32;
    r.shape = shape;
    m.recs.push_back(r);
  };
  add("model.embed_tokens.weight", {tc.vocab, D}, -1, 1);
  for (int i = 0; i < tc.layers; i++) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {D}, 0.8, 1.2);
    add(p + "self_attn.q_proj.weight", {Dq, D}, -0.3, 0.3);
    add(p + "self_attn.q_proj.bias", {Dq}, -0.2, 0.2);
    add(p + "self_attn.k_proj.weight", {Dkv, D}, -0.3, 0.3);
    add(p + "self_attn.k_proj.bias", {Dkv}, -0.2, 0.2);
    add(p + "self_attn.v_proj.weight", {Dkv, D}, -0.3, 0.3);
    add(p + "self_attn.v_proj.bias", {Dkv}, -0.2, 0.2);
    add(p + "self_attn.o_proj.weight", {D, Dq}, -0.3, 0.3);
    add(p + "post_attention_layernorm.weight", {D}, 0.8, 1.2);
    add(p + "mlp.gate_proj.weight", {F, D}, -0.3, 0.3);
    add(p + "mlp.up_proj.weight", {F, D}, -0.3, 0.3);
    add(p + "mlp.down_proj.weight", {D, F}, -0.3, 0.3);
  }
  add("model.norm.weight", {D}, 0.8, 1.2);
  add("lm_head.weight", {tc.vocab, D}, -0.3, 0.3);
  FILE* f = std::fopen(file.c_str(), "wb");
  uint64_t off = 0;
  for (TensorRecord& r : m.recs) {
    const std::vector<float>& v = m.vals[r.name];
    std::fwrite(v.data(), 4, v.size(), f);
    r.offset = off;
    r.nbytes = v.size() * 4;
    off += r.nbytes;
  }
  std::fclose(f);
  return m;
}

// Naive fp64 decoder over packed segments; cos/sin are the engine's M-RoPE tables (widened).
DVec ref_forward(const TextConfig& tc, std::map<std::string, DVec>& w, const DVec& x_in, int64_t T,
                 const std::vector<int32_t>& cu, const DVec& cs, const DVec& sn) {
  const int64_t D = tc.hidden, F = tc.intermediate, hd = tc.head_dim, Dq = tc.heads * hd, Dkv = tc.kv_heads * hd;
  DVec x = x_in, h(static_cast<size_t>(T * D)), r(static_cast<size_t>(T));
  ref::AttnShape as{tc.heads, tc.kv_heads, int(hd), 1.0 / std::sqrt(double(hd)), true, cu, cu};
  for (int i = 0; i < tc.layers; i++) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    ref::rmsnorm<double>(h, r, x, w[p + "input_layernorm.weight"], T, D, tc.eps);
    DVec q(size_t(T * Dq)), k(size_t(T * Dkv)), v(size_t(T * Dkv)), att(size_t(T * Dq)), lse(size_t(tc.heads * T));
    ref::linear<double>(q, h, w[p + "self_attn.q_proj.weight"], &w[p + "self_attn.q_proj.bias"], T, Dq, D, false);
    ref::linear<double>(k, h, w[p + "self_attn.k_proj.weight"], &w[p + "self_attn.k_proj.bias"], T, Dkv, D, false);
    ref::linear<double>(v, h, w[p + "self_attn.v_proj.weight"], &w[p + "self_attn.v_proj.bias"], T, Dkv, D, false);
    ref::rope<double>(q, cs, sn, T, tc.heads, int(hd), Dq, false);
    ref::rope<double>(k, cs, sn, T, tc.kv_heads, int(hd), Dkv, false);
    ref::attention<double>(att, lse, q, k, v, as);
    ref::linear<double>(x, att, w[p + "self_attn.o_proj.weight"], nullptr, T, D, Dq, true);
    ref::rmsnorm<double>(h, r, x, w[p + "post_attention_layernorm.weight"], T, D, tc.eps);
    DVec g(size_t(T * F)), u(size_t(T * F));
    ref::linear<double>(g, h, w[p + "mlp.gate_proj.weight"], nullptr, T, F, D, false);
    ref::linear<double>(u, h, w[p + "mlp.up_proj.weight"], nullptr, T, F, D, false);
    for (size_t e = 0; e < g.size(); e++) g[e] = ref::silu<double>(g[e]) * u[e];
    ref::linear<double>(x, g, w[p + "mlp.down_proj.weight"], nullptr, T, D, F, true);
  }
  DVec out(size_t(T * D));
  ref::rmsnorm<double>(out, r, x, w["model.norm.weight"], T, D, tc.eps);
  return out;
}

}  // namespace

VR_TEST(train_llm_forward_backward) {
  const std::string file = "/tmp/vreflect_test_train_llm_" + std::to_string(::getpid()) + ".bin";
  TinyLlm m = make_tiny(11, file);
  const TextConfig& tc = m.tc;
  const int64_t D = tc.hidden;
  WeightStore ws(m.recs);
  ParamStore ps;
  TrainLLM llm(tc, ps);
  ps.allocate();
  llm.load(ws);

  // Two packed samples (5 and 7 tokens) with M-RoPE positions that restart, image-like h/w planes in sample 2.
  const std::vector<int32_t> cu = {0, 5, 12};
  const int64_t T = 12;
  std::vector<int32_t> pos(size_t(3 * T));
  const int32_t pt[12] = {0, 1, 2, 3, 4, 0, 1, 1, 1, 1, 3, 4}, ph[12] = {0, 1, 2, 3, 4, 0, 1, 1, 2, 2, 3, 4},
                pw[12] = {0, 1, 2, 3, 4, 0, 1, 2, 1, 2, 3, 4};
  for (int64_t i = 0; i < T; i++) {
    pos[size_t(i)] = pt[i];
    pos[size_t(T + i)] = ph[i];
    pos[size_t(2 * T + i)] = pw[i];
  }
  Rng rng(5);
  const std::vector<float> x = rng.vec(size_t(T * D), -1, 1);
  std::vector<float> hidden(size_t(T * D));
  llm.forward(x.data(), T, pos.data(), cu.data(), 2, hidden.data());

  // fp64 decoder
  std::vector<int64_t> pos64(pos.begin(), pos.end());
  std::vector<float> cs, sn;
  mrope_tables(tc, pos64.data(), T, T, cs, sn);
  std::map<std::string, DVec> w;
  for (auto& kv : m.vals) w[kv.first] = DVec(kv.second.begin(), kv.second.end());
  const DVec csd(cs.begin(), cs.end()), snd(sn.begin(), sn.end()), xd(x.begin(), x.end());
  const DVec ref = ref_forward(tc, w, xd, T, cu, csd, snd);
  check_close("llm train forward vs fp64 decoder (2 packed samples)", to_double(hidden).data(), ref.data(), ref.size(),
              2e-5, 2e-5);

  // Packing == separate forwards; single sample == the inference LanguageModel.
  LanguageModel inf(tc, ws, DType::F32);
  for (int s = 0; s < 2; s++) {
    const int64_t t0 = cu[size_t(s)], n = cu[size_t(s + 1)] - t0;
    std::vector<int32_t> ps1(size_t(3 * n));
    std::vector<int64_t> pi(size_t(3 * n));
    for (int a = 0; a < 3; a++)
      for (int64_t i = 0; i < n; i++) pi[size_t(a * n + i)] = ps1[size_t(a * n + i)] = pos[size_t(a * T + t0 + i)];
    const std::vector<int32_t> cu1 = {0, int32_t(n)};
    std::vector<float> h1(size_t(n * D)), h2(size_t(n * D));
    llm.forward(&x[size_t(t0 * D)], n, ps1.data(), cu1.data(), 1, h1.data());
    check_close("sample " + std::to_string(s) + ": packed forward == separate forward", to_double(h1).data(),
                to_double(std::vector<float>(hidden.begin() + t0 * D, hidden.begin() + (t0 + n) * D)).data(),
                h1.size(), 1e-6, 1e-6);
    KVCache cache = inf.new_cache();
    inf.forward(h2.data(), &x[size_t(t0 * D)], n, pi.data(), n, cache);
    check_close("sample " + std::to_string(s) + ": train forward == inference LanguageModel", to_double(h1).data(),
                to_double(h2).data(), h1.size(), 1e-6, 1e-6);
  }

  // Backward of L = sum(c * hidden) against central differences of the fp64 decoder.
  llm.forward(x.data(), T, pos.data(), cu.data(), 2, hidden.data());
  const std::vector<float> c = rng.vec(size_t(T * D), -1, 1);
  std::vector<float> dx(size_t(T * D));
  llm.backward(c.data(), dx.data());
  auto loss = [&](std::map<std::string, DVec>& ww, const DVec& xx) {
    const DVec hcur = ref_forward(tc, ww, xx, T, cu, csd, snd);
    double l = 0;
    for (size_t e = 0; e < hcur.size(); e++) l += c[e] * hcur[e];
    return l;
  };
  auto direction = [&](size_t n) {
    DVec u(n);
    for (auto& e : u) e = rng.uniform();
    return u;
  };
  const double h = 1e-5;
  {
    const DVec u = direction(xd.size());
    DVec xp = xd, xm = xd;
    for (size_t e = 0; e < u.size(); e++) {
      xp[e] += h * u[e];
      xm[e] -= h * u[e];
    }
    double an = 0;
    for (size_t e = 0; e < u.size(); e++) an += dx[e] * u[e];
    check_fd("llm dx (input embeddings)", (loss(w, xp) - loss(w, xm)) / (2 * h), an, 2e-4);
  }
  for (const TensorRecord& r : m.recs) {
    if (r.name == "model.embed_tokens.weight" || r.name == "lm_head.weight") continue;  // not used by forward()
    const Param& p = ps.get(r.name);
    const DVec u = direction(size_t(p.numel));
    std::map<std::string, DVec> wp = w, wm = w;
    for (size_t e = 0; e < u.size(); e++) {
      wp[r.name][e] += h * u[e];
      wm[r.name][e] -= h * u[e];
    }
    double an = 0;
    for (size_t e = 0; e < u.size(); e++) an += p.g[e] * u[e];
    check_fd("llm d" + r.name, (loss(wp, xd) - loss(wm, xd)) / (2 * h), an, 2e-4);
  }

  // MLP row chunks (5 rows instead of 1024): the same forward and gradients.
  std::vector<float> g_full;
  for (auto& p : ps.all()) g_full.insert(g_full.end(), p->g, p->g + p->numel);
  ps.zero_grad();
  llm.set_mlp_chunk_rows(5);
  std::vector<float> hidden5(hidden.size()), dx5(dx.size());
  llm.forward(x.data(), T, pos.data(), cu.data(), 2, hidden5.data());
  llm.backward(c.data(), dx5.data());
  std::vector<float> g5;
  for (auto& p : ps.all()) g5.insert(g5.end(), p->g, p->g + p->numel);
  check_close("MLP in 5-row chunks: same hidden", to_double(hidden5).data(), to_double(hidden).data(), hidden.size(),
              1e-6, 1e-6);
  check_close("MLP in 5-row chunks: same dx", to_double(dx5).data(), to_double(dx).data(), dx.size(), 1e-5, 1e-5);
  check_close("MLP in 5-row chunks: same weight gradients", to_double(g5).data(), to_double(g_full).data(), g5.size(),
              1e-4, 1e-5);

  // Checkpointing off (every layer's activations kept, nothing recomputed): bit-identical hidden states, dx and
  // gradients, in 5-row chunks and in one chunk, and switching back on gives the same again.
  for (int64_t rows : {int64_t(5), int64_t(1024)}) {
    llm.set_mlp_chunk_rows(rows);
    auto run = [&](bool ckpt, std::vector<float>& hid, std::vector<float>& dxo, std::vector<float>& grads) {
      ps.zero_grad();
      llm.set_checkpointing(ckpt);
      hid.assign(hidden.size(), 0.f);
      dxo.assign(dx.size(), 0.f);
      llm.forward(x.data(), T, pos.data(), cu.data(), 2, hid.data());
      llm.backward(c.data(), dxo.data());
      grads.clear();
      for (auto& p : ps.all()) grads.insert(grads.end(), p->g, p->g + p->numel);
    };
    std::vector<float> h_on, dx_on, g_on, h_off, dx_off, g_off, h_on2, dx_on2, g_on2;
    run(true, h_on, dx_on, g_on);
    run(false, h_off, dx_off, g_off);
    run(true, h_on2, dx_on2, g_on2);
    const std::string tag = " (" + std::to_string(rows) + "-row MLP chunks)";
    report(h_on == h_off && dx_on == dx_off && g_on == g_off,
           "checkpointing off == on: identical hidden, dx and weight gradients" + tag);
    report(h_on2 == h_on && dx_on2 == dx_on && g_on2 == g_on, "checkpointing back on: identical again" + tag);
    check_close("checkpointing off: gradients vs the fp64-checked run" + tag, to_double(g_off).data(),
                to_double(g_full).data(), g_off.size(), 1e-4, 1e-5);
  }
  llm.set_checkpointing(true);
  std::remove(file.c_str());
}

}  // namespace vr::test
