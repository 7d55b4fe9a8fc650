#include "cuda/model/gpu_session.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/decode_graph.h"
#include "cuda/runtime/device_info.h"
#include "model/decode_rules.h"
#include "model/rope_tables.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A device array for one call's buffers (freed with it).
template <class T>
struct DeviceArray {
  DeviceArena arena;
  T* p = nullptr;
  DeviceArray(int64_t n, const char* what)
      : arena(DeviceArena::round_up(size_t(std::max<int64_t>(n, 1)) * sizeof(T)), what) {
    p = arena.take<T>(std::max<int64_t>(n, 1));
  }
};

// KV rows kept free after the prompt when the cache is first made; generate grows it to its own worst case.
constexpr int64_t kPrefillSpare = 64;

}  // namespace

int64_t choose_prefill_chunk(int64_t L, int64_t requested, int64_t free_bytes, size_t held,
                             const std::function<size_t(int64_t)>& scratch_bytes) {
  VR_CHECK(L > 0 && requested >= 0, "prefill chunk: bad arguments");
  if (requested > 0) return std::min(requested, L);
  if (free_bytes < 0) return L;
  const double budget = double(free_bytes + int64_t(held)) * 0.95 - double(64 << 20);
  auto fits = [&](int64_t rows) { return double(scratch_bytes(rows)) <= budget; };
  if (fits(L)) return L;
  for (int64_t c = kMaxAutoPrefillChunk; c >= kMinAutoPrefillChunk; c /= 2)
    if (c < L && fits(c)) return c;
  const int64_t least = std::min(L, kMinAutoPrefillChunk);
  fail("prefill: the decoder activations of a ", L, "-token prompt do not fit the GPU even in chunks of ", least,
       " tokens (", scratch_bytes(least) >> 20, " MiB needed, ", free_bytes >> 20,
       " MiB free of which 5% + 64 MiB stay in reserve): lower --max-pixels or use a GPU with more memory");
}

void require_cuda_device() {
#if !defined(VR_CUDA_EMULATED)
  const cuda_runtime::RuntimeProbe p = cuda_runtime::probe_runtime(false);
  if (!p.error.empty()) fail("--device cuda: ", p.error);
  if (p.devices.empty()) fail("--device cuda: driver found but no GPU");
  const cuda_runtime::GpuDevice& d = p.devices[0];
  if (d.image_checked && !d.image_ok)
    fail("--device cuda: ", d.name, " (sm_", d.cc_major, d.cc_minor, "): this build has no kernel image for it (",
         d.image_error, "); rebuild with CMAKE_CUDA_ARCHITECTURES including ", d.cc_major, d.cc_minor);
#endif
}

std::string cuda_device_name() {
#if defined(VR_CUDA_EMULATED)
  return "CUDA emulator (CPU)";
#else
  const cuda_runtime::RuntimeProbe p = cuda_runtime::probe_runtime(false);
  return p.devices.empty() ? std::string("no GPU") : p.devices[0].name;
#endif
}

GpuQwenVL::GpuQwenVL(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors) : cfg_(cfg) {
  cfg_.validate();
  require_cuda_device();
  cudaStream_t stream = nullptr;
  const cudaError_t e = cudaStreamCreate(&stream);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    fail("cuda: cannot create the decoder's stream: ", cudaGetErrorString(e));
  }
  stream_.reset(stream);
  {
    // The raw checkpoint views (packing off): the store is needed only while the tensors are uploaded.
    WeightStore ws(tensors);
    ws.set_pack_linears(false);
    weights_ = std::make_unique<DeviceWeights>(cfg_, ws, WeightParts::All);
  }
  vision_ = std::make_unique<GpuVisionTower>(*weights_);
  llm_ = std::make_unique<GpuLanguageModel>(*weights_, stream_.get());
}

void GpuQwenVL::StreamDestroyer::operator()(CUstream_st* s) const { cudaStreamDestroy(s); }  // runs what is queued

int64_t GpuSession::graph_launches() { return DecodeGraphs::launches(); }
int64_t GpuSession::graph_captures() { return DecodeGraphs::captures(); }

GpuSession::GpuSession(std::shared_ptr<GpuQwenVL> model) : model_(std::move(model)) {
  const TextConfig& tc = model_->config().text;
  auto carve = [&](auto& a) {
    hidden_ = a.template take<float>(tc.hidden);
    x_ = a.template take<float>(tc.hidden);
    logits_ = a.template take<float>(tc.vocab);
    next_ = a.template take<int32_t>(1);
    seen_ = a.template take<uint8_t>(tc.vocab);
  };
  ArenaSizer size;
  carve(size);
  state_ = DeviceArena(size.bytes(), "decode state");
  carve(state_);
}

void GpuSession::ensure_room(int64_t extra) {
  const int64_t need = (cache_ ? cache_->len() : 0) + extra;
  if (cache_ && need <= cache_->capacity()) return;
  if (!cache_) {
    cache_ = std::make_unique<GpuKVCache>(model_->config().text, need);
    return;
  }
  // Grow geometrically so a long decode reallocates a logarithmic number of times.
  cache_ = std::make_unique<GpuKVCache>(cache_->grown(std::max(need, 2 * cache_->capacity())));
}

PrefillOutput GpuSession::prefill(const PrefillInput& in) {
  const ModelConfig& cfg = model_->config();
  const int64_t L = int64_t(in.ids.size()), D = cfg.text.hidden, V = cfg.text.vocab;
  VR_CHECK(L > 0, "prefill: empty prompt");
  int64_t image_tokens = 0, image_begin = 0, image_end = 0;
  for (int64_t i = 0; i < L; i++) {
    VR_CHECK(in.ids[i] >= 0 && in.ids[i] < V, "prefill: token id ", in.ids[i], " at position ", i,
             " is outside the vocabulary [0, ", V, ")");
    if (in.ids[i] != cfg.image_token_id) continue;
    if (image_tokens++ == 0) image_begin = i;
    image_end = i + 1;
  }
  int64_t Np = 0, Nt = 0;
  for (const ImageGrid& g : in.grids) {
    Np += g.patches();
    Nt += g.tokens();
  }
  if (in.grids.empty()) {
    VR_CHECK(in.pixel_values.empty(), "prefill: pixel_values given without an image grid");
  } else {
    VR_CHECK(int64_t(in.pixel_values.size()) == Np * cfg.vision.patch_dim(), "prefill: pixel_values has ",
             in.pixel_values.size(), " values, the grids need ", Np, " x ", cfg.vision.patch_dim());
  }
  VR_CHECK(image_tokens == Nt, "prefill: ", image_tokens, " image tokens but ", Nt, " vision features");
  VR_CHECK(Nt == 0 || cfg.vision.out_hidden == D, "prefill: vision features of width ", cfg.vision.out_hidden,
           " cannot fill rows of width ", D);

  const std::lock_guard<std::mutex> lock(model_->mu_);
  prefilled_ = false;
  PrefillOutput out;
  image_begin_ = image_begin;
  image_end_ = image_end;
  rope_delta_ = mrope_positions(in.ids.data(), L, in.grids, cfg.image_token_id, cfg.vision.merge, out.positions);
  out.rope_delta = rope_delta_;
  cache_.reset();
  ensure_room(L + (spare_for_tests_ >= 0 ? spare_for_tests_ : kPrefillSpare));
  GpuLanguageModel& llm = *model_->llm_;
  const int vit_blocks = Nt > 0 ? cfg.vision.depth : 0;
  progress_.reset(vit_blocks + cfg.text.layers);  // the LLM's share is re-counted once the chunk is known

  DeviceArray<int32_t> ids(L, "prompt ids");
  DeviceArray<float> x(L * D, "prompt embeddings");
  copy_to_device(ids.p, in.ids.data(), size_t(L) * sizeof(int32_t), "prompt ids");
  // The ViT first: its activations are freed when it returns, so the chunk is sized with them gone.
  std::unique_ptr<DeviceArray<float>> feats;
  if (Nt > 0) {
    auto t0 = std::chrono::steady_clock::now();
    feats = std::make_unique<DeviceArray<float>>(Nt * D, "vision features");
    model_->vision_->forward(feats->p, in.pixel_values.data(), in.grids);
    out.vit_scratch_bytes = int64_t(model_->vision_->last_scratch_bytes());
    out.feature_bytes = int64_t(feats->arena.capacity());
    if (in.all_logits) {
      out.vision_features.resize(size_t(Nt * D));
      copy_to_host(out.vision_features.data(), feats->p, out.vision_features.size() * sizeof(float),
                   "vision features");
    }
    device_sync("vision tower");
    out.vision_ms = ms_since(t0);
    progress_.done.fetch_add(cfg.vision.depth);
  }
  const int64_t chunk = choose_prefill_chunk(L, in.prefill_chunk, device_free_bytes(), llm.scratch_held(),
                                             [&](int64_t rows) { return llm.scratch_bytes(rows); });
  const int64_t chunks = (L + chunk - 1) / chunk;
  if (chunks > 1) {
    progress_.reset(vit_blocks + cfg.text.layers * chunks);
    progress_.done.fetch_add(vit_blocks);
  }

  auto t1 = std::chrono::steady_clock::now();
  for (int64_t c0 = 0; c0 < L; c0 += chunk)
    llm.embed(x.p + c0 * D, ids.p + c0, std::min(chunk, L - c0), /*check_ids=*/false);  // checked above
  if (Nt > 0) {
    DeviceArray<int32_t> rows(Nt + 1, "image token rows");
    out.feature_bytes += int64_t(rows.arena.capacity());
    token_rows(rows.p, rows.p + Nt, ids.p, L, cfg.image_token_id, Nt);
    scatter_rows(x.p, feats->p, rows.p, Nt, D, L);
    feats.reset();  // (stream-ordered: the free waits for the scatter on the legacy stream)
  }
  // Chunk by chunk: each forward appends its rows' keys and values after the cache, and its causal attention sees
  // every earlier row of the prompt through the cache (M-RoPE positions are the prompt's, plane stride L).
  for (int64_t c0 = 0; c0 < L; c0 += chunk) {
    const int64_t n = std::min(chunk, L - c0);
    llm.forward(x.p + c0 * D, x.p + c0 * D, n, out.positions.data() + c0, L, *cache_);
    progress_.done.fetch_add(cfg.text.layers);
  }
  const int64_t rows = in.all_logits ? L : 1;
  const float* hrows = x.p + (L - rows) * D;
  DeviceArray<float> logits(rows * V, "prompt logits");
  for (int64_t r0 = 0; r0 < rows; r0 += chunk)
    llm.logits(logits.p + r0 * V, hrows + r0 * D, std::min(chunk, rows - r0));
  out.hidden.resize(size_t(rows * D));
  out.logits.resize(size_t(rows * V));
  copy_to_host(out.hidden.data(), hrows, out.hidden.size() * sizeof(float), "prompt hidden states");
  copy_to_host(out.logits.data(), logits.p, out.logits.size() * sizeof(float), "prompt logits");
  out.llm_ms = ms_since(t1);
  out.prefill_chunk = chunk;
  out.llm_scratch_bytes = int64_t(llm.scratch_held());
  out.prompt_bytes = int64_t(ids.arena.capacity() + x.arena.capacity());

  // The decode loop starts from the last prompt row.
  copy_on_device(hidden_, x.p + (L - 1) * D, size_t(D) * sizeof(float), "last hidden state");
  copy_on_device(logits_, logits.p + (rows - 1) * V, size_t(V) * sizeof(float), "last logits");
  device_sync("prefill");
  seq_ = in.ids;
  prefilled_ = true;
  return out;
}

GenerateResult GpuSession::generate(const GenerateOptions& opt) {
  VR_CHECK(prefilled_, "generate: call prefill first");
  check_generate_options(opt);
  const GraphMode graph_mode = graph_mode_from_env();
  prefilled_ = false;  // a session decodes once per prefill
  const std::lock_guard<std::mutex> lock(model_->mu_);
  GpuLanguageModel& llm = *model_->llm_;
  const Stream s = llm.stream();
  const int64_t D = llm.config().hidden, V = llm.config().vocab;
  const int64_t L = int64_t(seq_.size());
  GenerateResult r;

  std::vector<uint8_t> seen(static_cast<size_t>(V), 0);
  for (int32_t id : seq_) seen[size_t(id)] = 1;
  copy_to_device(seen_, seen.data(), seen.size(), "repetition penalty mask", s);
  // Room for the usual case (the token limit plus one latent quota); more latent phases grow the cache again.
  ensure_room(spare_for_tests_ >= 0 ? spare_for_tests_ : int64_t(opt.max_new_tokens) + opt.latent_steps + 1);

  DecodeRules rules(opt, seq_);
  std::vector<float> step(opt.keep_step_logits ? size_t(V) : 0);
  // The latent steps' attention over the image tokens, when asked for and there is an image.
  const int64_t nk = image_end_ - image_begin_;
  std::unique_ptr<DeviceArray<float>> probs;
  if (opt.capture_attention && nk > 0) probs = std::make_unique<DeviceArray<float>>(nk, "attention capture");
  DeviceAttnProbe probe;
  if (probs) {
    probe.key_begin = image_begin_;
    probe.key_end = image_end_;
    probe.probs = probs->p;
  }
  DecodeGraphs graphs(s, graph_mode != GraphMode::Off);
  // Choose on the device (penalty over every id so far, argmax, the id marked seen): after the prompt here, then
  // at the end of every step (inside its graph).
  greedy_next_token(next_, seen_, logits_, 1, V, opt.repetition_penalty, /*mark_seen=*/true, s);
  for (;;) {
    // 1. One id comes back (and the raw logits, before the penalty: what the golden fixtures store).
    if (opt.keep_step_logits) {
      copy_to_host(step.data(), logits_, step.size() * sizeof(float), "step logits", s);
      r.step_logits.insert(r.step_logits.end(), step.begin(), step.end());
    }
    int32_t nxt = 0;
    copy_to_host(&nxt, next_, sizeof nxt, "next token id", s);

    // 2. The decoding rules (shared with the CPU session): stop, or what the next forward is fed.
    const DecodeRules::Next next = rules.accept(nxt, r);
    if (next == DecodeRules::Next::stop) break;

    // 3. Next step: the id's embedding (read on the device) or the last hidden state in latent mode, the forward,
    // the logits and the next choice - replayed from a CUDA graph when this step's shape was captured.
    auto t0 = std::chrono::steady_clock::now();
    ensure_room(1);
    const int64_t p = L + int64_t(r.ids.size()) - 1 + rope_delta_;
    const int64_t pos[3] = {p, p, p};
    DecodeStepKey key;
    key.feed_hidden = next == DecodeRules::Next::feed_hidden;
    key.probe = probs && key.feed_hidden;
    key.plan = llm.stage_decode(pos, 1, 1, *cache_);
    GpuKVCache& cache = *cache_;
    graphs.run(key, [&] {
      if (key.feed_hidden) copy_on_device(x_, hidden_, size_t(D) * sizeof(float), "latent input", s);
      else llm.embed(x_, next_, 1, /*check_ids=*/false);  // greedy_next_token's id is in range by construction
      llm.enqueue_decode(hidden_, x_, key.plan, cache, key.probe ? &probe : nullptr);
      llm.logits(logits_, hidden_, 1);
      greedy_next_token(next_, seen_, logits_, 1, V, opt.repetition_penalty, /*mark_seen=*/true, s);
    });
    cache.advance(1);
    if (key.probe) {
      r.attention.emplace_back(size_t(nk));
      copy_to_host(r.attention.back().data(), probs->p, size_t(nk) * sizeof(float), "attention capture", s);
    }
    const cudaError_t e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) fail("cuda: decode step failed: ", cudaGetErrorString(e));
    r.decode_ms += ms_since(t0);
    r.decode_forwards++;
  }
  return r;
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
