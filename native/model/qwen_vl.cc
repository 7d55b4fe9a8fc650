#include "model/qwen_vl.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "cpu/op_profile.h"
#include "model/decode_rules.h"

namespace vr {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

QwenVLModel::QwenVLModel(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors) : cfg_(cfg) {
  cfg_.validate();
  ws_ = std::make_unique<WeightStore>(tensors);
  ws_->set_pack_linears(true);  // inference: bf16 GEMM weights in the GEMM's own layout (VREFLECT_PACK_WEIGHTS=0: off)
  vision_ = std::make_unique<VisionTower>(cfg_.vision, *ws_, cfg_.compute);
  llm_ = std::make_unique<LanguageModel>(cfg_.text, *ws_, cfg_.compute);
}

Session::Session(std::shared_ptr<const QwenVLModel> model)
    : model_(std::move(model)), cache_(model_->llm().new_cache()) {}

std::unique_lock<std::mutex> QwenVLModel::borrow_workspace(PrefillWorkspace** w) const {
  std::unique_lock<std::mutex> lock(work_mu_, std::try_to_lock);
  *w = lock.owns_lock() ? &work_ : nullptr;
  return lock;
}

PrefillOutput Session::prefill(const PrefillInput& in) {
  const ModelConfig& cfg = model_->config();
  const int64_t L = int64_t(in.ids.size()), D = cfg.text.hidden, V = cfg.text.vocab;
  VR_CHECK(L > 0, "prefill: empty prompt");
  for (int64_t i = 0; i < L; i++)
    VR_CHECK(in.ids[i] >= 0 && in.ids[i] < V, "prefill: token id ", in.ids[i], " at position ", i,
             " is outside the vocabulary [0, ", V, ")");
  cache_.clear();
  if (prof::enabled()) prof::reset();
  progress_.reset((in.grids.empty() ? 0 : cfg.vision.depth) + cfg.text.layers);
  PrefillOutput out;
  PrefillWorkspace* work = nullptr;
  const std::unique_lock<std::mutex> work_lock = model_->borrow_workspace(&work);
  rope_delta_ = mrope_positions(in.ids.data(), L, in.grids, cfg.image_token_id, cfg.vision.merge, out.positions);
  out.rope_delta = rope_delta_;

  // Input embeddings, with the vision features scattered into the <|image_pad|> rows in order.
  std::vector<float> x(size_t(L * D));
  {
    prof::Scope sc("llm embed");
    model_->llm().embed(x.data(), in.ids.data(), L);
  }
  image_begin_ = image_end_ = 0;
  if (!in.grids.empty()) {
    int64_t Np = 0;
    for (const ImageGrid& g : in.grids) Np += g.patches();
    VR_CHECK(int64_t(in.pixel_values.size()) == Np * cfg.vision.patch_dim(), "prefill: pixel_values has ",
             in.pixel_values.size(), " values, the grids need ", Np, " x ", cfg.vision.patch_dim());
    auto t0 = std::chrono::steady_clock::now();
    std::vector<float> feat;
    model_->vision().forward(in.pixel_values.data(), in.grids, feat, &progress_, work ? &work->vit : nullptr);
    out.vision_ms = ms_since(t0);
    prof::Scope sc("scatter vision features");
    int64_t j = 0;
    bool first = true;
    for (int64_t i = 0; i < L; i++) {
      if (in.ids[i] != cfg.image_token_id) continue;
      if (first) { image_begin_ = i; first = false; }
      image_end_ = i + 1;
      std::memcpy(&x[i * D], &feat[j * D], D * sizeof(float));
      j++;
    }
    VR_CHECK(j * D == int64_t(feat.size()), "prefill: ", j, " image tokens but ", feat.size() / D,
             " vision features");
    if (in.all_logits) out.vision_features = std::move(feat);
  } else {
    VR_CHECK(in.pixel_values.empty(), "prefill: pixel_values given without an image grid");
  }

  auto t1 = std::chrono::steady_clock::now();
  std::vector<float> hidden(size_t(L * D));
  // Chunked when asked (PrefillInput::prefill_chunk): each forward appends its rows after the cache and attends
  // to every earlier prompt row through it; the positions are the prompt's (plane stride L).
  const int64_t chunk = in.prefill_chunk > 0 ? std::min(in.prefill_chunk, L) : L;
  const int64_t chunks = (L + chunk - 1) / chunk;
  if (chunks > 1) {
    const int64_t vit_done = progress_.done.load();
    progress_.reset((in.grids.empty() ? 0 : cfg.vision.depth) + cfg.text.layers * chunks);
    progress_.done.fetch_add(vit_done);
  }
  for (int64_t c0 = 0; c0 < L; c0 += chunk)
    model_->llm().forward(&hidden[c0 * D], &x[c0 * D], std::min(chunk, L - c0), out.positions.data() + c0, L, cache_,
                          nullptr, &progress_, work ? &work->llm : nullptr);
  out.prefill_chunk = chunk;
  const int64_t rows = in.all_logits ? L : 1;
  const float* hsrc = in.all_logits ? hidden.data() : &hidden[(L - 1) * D];
  out.hidden.assign(hsrc, hsrc + rows * D);
  out.logits.resize(size_t(rows * V));
  model_->llm().logits(out.logits.data(), out.hidden.data(), rows);
  out.llm_ms = ms_since(t1);
  if (prof::enabled())
    std::fprintf(stderr, "%s", prof::report("prefill of " + std::to_string(L) + " tokens: vision " +
                                            std::to_string(out.vision_ms) + " ms, llm " + std::to_string(out.llm_ms) +
                                            " ms").c_str());

  last_logits_.assign(out.logits.end() - V, out.logits.end());
  last_hidden_.assign(out.hidden.end() - D, out.hidden.end());
  seq_ = in.ids;
  prefilled_ = true;
  return out;
}

GenerateResult Session::generate(const GenerateOptions& opt) {
  VR_CHECK(prefilled_, "generate: call prefill first");
  check_generate_options(opt);
  prefilled_ = false;  // a session decodes once per prefill
  const LanguageModel& llm = model_->llm();
  const int64_t D = llm.config().hidden, V = llm.config().vocab;
  const int64_t L = int64_t(seq_.size());
  GenerateResult r;

  std::vector<uint8_t> seen(static_cast<size_t>(V), 0);
  for (int32_t id : seq_) seen[size_t(id)] = 1;
  std::vector<float> scores(static_cast<size_t>(V)), x(static_cast<size_t>(D)), h(static_cast<size_t>(D));
  std::vector<int64_t> pos(3);

  DecodeRules rules(opt, seq_);  // the latent / eos / limit rules, shared with the CUDA session
  for (;;) {
    // 1. Choose: HF repetition penalty over every distinct id so far, then argmax (lowest id on ties).
    std::memcpy(scores.data(), last_logits_.data(), V * sizeof(float));
    if (opt.repetition_penalty != 1.0f) {
      const float p = opt.repetition_penalty;
      for (int64_t i = 0; i < V; i++)
        if (seen[i]) scores[i] = scores[i] < 0 ? scores[i] * p : scores[i] / p;
    }
    int32_t nxt = 0;
    for (int64_t i = 1; i < V; i++)
      if (scores[i] > scores[nxt]) nxt = int32_t(i);
    if (opt.keep_step_logits)  // raw logits, before the penalty (what the golden fixtures store)
      r.step_logits.insert(r.step_logits.end(), last_logits_.begin(), last_logits_.end());
    seen[size_t(nxt)] = 1;

    // 2. The decoding rules: stop, or what the next forward is fed.
    const DecodeRules::Next next = rules.accept(nxt, r);
    if (next == DecodeRules::Next::stop) break;
    const bool mode = next == DecodeRules::Next::feed_hidden;

    // 3. Next forward: the previous post-norm hidden state replaces the embedding while in latent mode.
    auto t0 = std::chrono::steady_clock::now();
    if (mode) std::memcpy(x.data(), last_hidden_.data(), D * sizeof(float));
    else llm.embed(x.data(), &nxt, 1);
    const int64_t p = L + int64_t(r.ids.size()) - 1 + rope_delta_;
    pos[0] = pos[1] = pos[2] = p;
    AttnProbe probe;
    const bool capture = mode && opt.capture_attention && image_end_ > image_begin_;
    if (capture) {
      probe.key_begin = image_begin_;
      probe.key_end = image_end_;
    }
    llm.forward(h.data(), x.data(), 1, pos.data(), 1, cache_, capture ? &probe : nullptr);
    llm.logits(last_logits_.data(), h.data(), 1);
    last_hidden_ = h;
    if (capture) r.attention.push_back(std::move(probe.probs));
    r.decode_ms += ms_since(t0);
    r.decode_forwards++;
  }
  return r;
}

}  // namespace vr
