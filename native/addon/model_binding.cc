// loadModel(spec) -> Promise<Model>; model.createSession() -> Session; session.prefill(..) / session.generate(..)
// -> Promises. Heavy work runs on the libuv pool (AsyncWorker) so progress output and SIGINT keep working; every
// argument is checked here and engine errors (vr::Error, std::bad_alloc) become rejected promises.
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "core/error.h"
#include "model/qwen_vl.h"

namespace vr::addon {

namespace {

// ---- argument helpers ---------------------------------------------------------------------------------
struct ArgError : std::runtime_error {
  explicit ArgError(const std::string& m) : std::runtime_error(m) {}
};

Napi::Value need(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) throw ArgError(where + ": missing '" + key + "'");
  return v;
}
double num(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = need(o, key, where);
  if (!v.IsNumber()) throw ArgError(where + ": '" + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
int int_in(const Napi::Object& o, const char* key, const std::string& where, int lo, int hi) {
  double d = num(o, key, where);
  if (d != double(int64_t(d)) || d < lo || d > hi)
    throw ArgError(where + ": '" + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "], got " + std::to_string(d));
  return int(d);
}
double opt_num(const Napi::Object& o, const char* key, double dflt, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw ArgError(where + ": '" + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
bool opt_bool(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}
std::string str(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = need(o, key, where);
  if (!v.IsString()) throw ArgError(where + ": '" + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}
std::vector<int64_t> int_list(const Napi::Value& v, const std::string& where) {
  if (!v.IsArray()) throw ArgError(where + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> r;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throw ArgError(where + " must be an array of integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (d != double(int64_t(d))) throw ArgError(where + " must hold integers");
    r.push_back(int64_t(d));
  }
  return r;
}
DType dtype_arg(const std::string& s, const std::string& where) {
  DType t;
  if (!dtype_from_name(s, &t)) throw ArgError(where + ": unsupported dtype '" + s + "'");
  return t;
}

ModelConfig parse_config(const Napi::Object& spec) {
  const std::string w = "loadModel config";
  Napi::Value cv = need(spec, "config", "loadModel");
  if (!cv.IsObject()) throw ArgError("loadModel: 'config' must be an object");
  Napi::Object c = cv.As<Napi::Object>();
  Napi::Value tv = need(c, "text", w), vv = need(c, "vision", w);
  if (!tv.IsObject() || !vv.IsObject()) throw ArgError(w + ": 'text' and 'vision' must be objects");
  Napi::Object t = tv.As<Napi::Object>(), v = vv.As<Napi::Object>();
  const int big = 1 << 30;
  ModelConfig m;
  m.text.hidden = int_in(t, "hidden", w + ".text", 1, big);
  m.text.layers = int_in(t, "layers", w + ".text", 1, 4096);
  m.text.heads = int_in(t, "heads", w + ".text", 1, 4096);
  m.text.kv_heads = int_in(t, "kvHeads", w + ".text", 1, 4096);
  m.text.head_dim = int_in(t, "headDim", w + ".text", 2, 4096);
  m.text.intermediate = int_in(t, "intermediate", w + ".text", 1, big);
  m.text.vocab = int_in(t, "vocab", w + ".text", 1, big);
  m.text.eps = float(num(t, "rmsEps", w + ".text"));
  m.text.rope_theta = float(num(t, "ropeTheta", w + ".text"));
  std::vector<int64_t> sec = int_list(need(t, "mropeSection", w + ".text"), w + ".text.mropeSection");
  if (sec.size() != 3) throw ArgError(w + ".text.mropeSection must have 3 entries");
  for (int i = 0; i < 3; i++) m.text.mrope_section[i] = int(sec[i]);
  m.text.tie_embeddings = opt_bool(t, "tieEmbeddings", false);
  m.vision.depth = int_in(v, "depth", w + ".vision", 1, 4096);
  m.vision.hidden = int_in(v, "hidden", w + ".vision", 1, big);
  m.vision.heads = int_in(v, "heads", w + ".vision", 1, 4096);
  m.vision.intermediate = int_in(v, "intermediate", w + ".vision", 1, big);
  m.vision.out_hidden = int_in(v, "outHidden", w + ".vision", 1, big);
  m.vision.patch = int_in(v, "patch", w + ".vision", 1, 4096);
  m.vision.temporal_patch = int_in(v, "temporalPatch", w + ".vision", 1, 64);
  m.vision.merge = int_in(v, "merge", w + ".vision", 1, 64);
  m.vision.window_size = int_in(v, "windowSize", w + ".vision", 1, 1 << 20);
  m.vision.in_channels = int_in(v, "inChannels", w + ".vision", 1, 64);
  m.vision.rope_theta = float(opt_num(v, "ropeTheta", 10000.0, w + ".vision"));
  for (int64_t b : int_list(need(v, "fullattBlocks", w + ".vision"), w + ".vision.fullattBlocks"))
    m.vision.fullatt_blocks.push_back(int(b));
  m.image_token_id = int_in(c, "imageTokenId", w, 0, big);
  m.vision_start_token_id = int_in(c, "visionStartTokenId", w, 0, big);
  std::string dt = spec.Get("dtype").IsString() ? spec.Get("dtype").As<Napi::String>().Utf8Value() : "fp32";
  if (dt == "fp32" || dt == "f32") m.compute = DType::F32;
  else if (dt == "bf16") m.compute = DType::BF16;
  else throw ArgError("loadModel: dtype must be 'fp32' or 'bf16', got '" + dt + "'");
  return m;
}

std::vector<TensorRecord> parse_tensors(const Napi::Object& spec) {
  Napi::Value tv = need(spec, "tensors", "loadModel");
  if (!tv.IsArray()) throw ArgError("loadModel: 'tensors' must be an array");
  Napi::Array a = tv.As<Napi::Array>();
  std::vector<TensorRecord> r;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) throw ArgError("loadModel: tensors[" + std::to_string(i) + "] must be an object");
    Napi::Object o = e.As<Napi::Object>();
    const std::string w = "loadModel tensors[" + std::to_string(i) + "]";
    TensorRecord t;
    t.name = str(o, "name", w);
    t.file = str(o, "file", w);
    double off = num(o, "offset", w), nb = num(o, "nbytes", w);
    if (off < 0 || nb < 0 || off != double(int64_t(off)) || nb != double(int64_t(nb)))
      throw ArgError(w + " (" + t.name + "): offset/nbytes must be non-negative integers");
    t.offset = uint64_t(off);
    t.nbytes = uint64_t(nb);
    t.dtype = dtype_arg(str(o, "dtype", w), w);
    t.shape = int_list(need(o, "shape", w), w + ".shape");
    r.push_back(std::move(t));
  }
  return r;
}

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

// ---- async workers --------------------------------------------------------------------------------------
// Runs `work` on the thread pool; `done` converts the result on the main thread. Exceptions reject the promise.
template <class Result>
class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;
  Job(Napi::Env env, Work work, Done done, std::function<void()> finally = nullptr)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)), finally_(std::move(finally)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      result_ = work_();
    } catch (const std::bad_alloc&) {
      SetError("out of memory (host allocation failed)");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    if (finally_) finally_();
    deferred_.Resolve(done_(Env(), result_));
  }
  void OnError(const Napi::Error& e) override {
    if (finally_) finally_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::function<void()> finally_;
  Result result_{};
};

// ---- Session --------------------------------------------------------------------------------------------
class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::FunctionReference ctor;
  static void Define(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Session",
                                   {InstanceMethod("prefill", &SessionWrap::Prefill),
                                    InstanceMethod("generate", &SessionWrap::Generate),
                                    InstanceAccessor("cacheLength", &SessionWrap::CacheLength, nullptr),
                                    InstanceAccessor("progress", &SessionWrap::GetProgress, nullptr)});
    ctor = Napi::Persistent(f);
    ctor.SuppressDestruct();
  }
  SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}
  void Init(std::shared_ptr<const QwenVLModel> m) { session_ = std::make_shared<Session>(std::move(m)); }

 private:
  Napi::Value CacheLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(session_ ? session_->cache_len() : 0));
  }

  // {done, total} of the running (or last) prefill; safe to read while it runs (atomics).
  Napi::Value GetProgress(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("done", double(session_ ? session_->progress().done.load() : 0));
    o.Set("total", double(session_ ? session_->progress().total.load() : 0));
    return o;
  }

  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) return ThrowError(env, "session is busy: wait for the previous call to finish");
    if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "prefill(input): input must be an object");
    auto in = std::make_shared<PrefillInput>();
    try {
      Napi::Object o = info[0].As<Napi::Object>();
      Napi::Value ids = need(o, "ids", "prefill");
      if (!ids.IsTypedArray() || ids.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        throw ArgError("prefill: 'ids' must be an Int32Array");
      Napi::Int32Array ia = ids.As<Napi::Int32Array>();
      in->ids.assign(ia.Data(), ia.Data() + ia.ElementLength());
      Napi::Value pv = o.Get("pixelValues");
      if (!pv.IsUndefined() && !pv.IsNull()) {
        if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
          throw ArgError("prefill: 'pixelValues' must be a Float32Array");
        Napi::Float32Array fa = pv.As<Napi::Float32Array>();
        in->pixel_values.assign(fa.Data(), fa.Data() + fa.ElementLength());
        Napi::Value gv = need(o, "grids", "prefill");
        if (!gv.IsArray()) throw ArgError("prefill: 'grids' must be an array of [t, h, w]");
        Napi::Array ga = gv.As<Napi::Array>();
        for (uint32_t i = 0; i < ga.Length(); i++) {
          std::vector<int64_t> g = int_list(ga.Get(i), "prefill: grids[" + std::to_string(i) + "]");
          if (g.size() != 3 || g[0] < 1 || g[1] < 1 || g[2] < 1 || g[1] > 1 << 16 || g[2] > 1 << 16 || g[0] > 1024)
            throw ArgError("prefill: grids[" + std::to_string(i) + "] must be [t, h, w] with positive sizes");
          in->grids.push_back(ImageGrid{int(g[0]), int(g[1]), int(g[2])});
        }
      }
      in->all_logits = opt_bool(o, "allLogits", false);
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<Session> s = session_;
    busy_ = true;
    auto* job = new Job<PrefillOutput>(
        env, [s, in]() { return s->prefill(*in); },
        [](Napi::Env env, PrefillOutput& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("logits", to_f32(env, r.logits));
          o.Set("hidden", to_f32(env, r.hidden));
          if (!r.vision_features.empty()) o.Set("visionFeatures", to_f32(env, r.vision_features));
          Napi::Int32Array pos = Napi::Int32Array::New(env, r.positions.size());
          for (size_t i = 0; i < r.positions.size(); i++) pos[i] = int32_t(r.positions[i]);
          o.Set("positions", pos);
          o.Set("ropeDelta", double(r.rope_delta));
          o.Set("visionMs", r.vision_ms);
          o.Set("llmMs", r.llm_ms);
          return o;
        },
        [this]() { busy_ = false; Unref(); });
    Ref();  // keep this wrapper alive while the job runs
    Napi::Promise p = job->promise();
    job->Queue();
    return p;
  }

  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) return ThrowError(env, "session is busy: wait for the previous call to finish");
    if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "generate(options): options must be an object");
    GenerateOptions opt;
    try {
      Napi::Object o = info[0].As<Napi::Object>();
      opt.max_new_tokens = int_in(o, "maxNewTokens", "generate", 1, 1 << 24);
      opt.latent_steps = int_in(o, "latentSteps", "generate", 0, 1 << 16);
      opt.repetition_penalty = float(opt_num(o, "repetitionPenalty", 1.0, "generate"));
      if (!(opt.repetition_penalty > 0)) throw ArgError("generate: 'repetitionPenalty' must be > 0");
      for (int64_t e : int_list(need(o, "eosIds", "generate"), "generate: eosIds")) opt.eos_ids.push_back(int(e));
      opt.lvr_start_id = int(opt_num(o, "lvrStartId", -1, "generate"));
      opt.capture_attention = opt_bool(o, "captureAttention", false);
      opt.keep_step_logits = opt_bool(o, "keepStepLogits", false);
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<Session> s = session_;
    busy_ = true;
    auto* job = new Job<GenerateResult>(
        env, [s, opt]() { return s->generate(opt); },
        [](Napi::Env env, GenerateResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          Napi::Array ids = Napi::Array::New(env, r.ids.size());
          Napi::Array lat = Napi::Array::New(env, r.ids.size());
          for (size_t i = 0; i < r.ids.size(); i++) {
            ids.Set(uint32_t(i), double(r.ids[i]));
            lat.Set(uint32_t(i), bool(r.latent_input[i]));
          }
          o.Set("ids", ids);
          o.Set("latentInput", lat);
          o.Set("latentStepsRun", r.latent_steps_run);
          Napi::Array att = Napi::Array::New(env, r.attention.size());
          for (size_t i = 0; i < r.attention.size(); i++) att.Set(uint32_t(i), to_f32(env, r.attention[i]));
          o.Set("attention", att);
          if (!r.step_logits.empty()) o.Set("stepLogits", to_f32(env, r.step_logits));
          o.Set("decodeMs", r.decode_ms);
          o.Set("decodeForwards", r.decode_forwards);
          o.Set("stopReason", r.stop_reason);
          return o;
        },
        [this]() { busy_ = false; Unref(); });
    Ref();  // keep this wrapper alive while the job runs
    Napi::Promise p = job->promise();
    job->Queue();
    return p;
  }

  std::shared_ptr<Session> session_;
  bool busy_ = false;
};
Napi::FunctionReference SessionWrap::ctor;

// ---- Model ----------------------------------------------------------------------------------------------
class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::FunctionReference ctor;
  static void Define(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Model",
                                   {InstanceMethod("createSession", &ModelWrap::CreateSession),
                                    InstanceMethod("memory", &ModelWrap::Memory)});
    ctor = Napi::Persistent(f);
    ctor.SuppressDestruct();
  }
  ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}
  std::shared_ptr<const QwenVLModel> model;

 private:
  Napi::Value CreateSession(const Napi::CallbackInfo& info) {
    Napi::Object o = SessionWrap::ctor.New({});
    SessionWrap::Unwrap(o)->Init(model);
    return o;
  }
  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("mappedBytes", double(model->weights().mapped_bytes()));
    o.Set("convertedBytes", double(model->weights().owned_bytes()));
    return o;
  }
};
Napi::FunctionReference ModelWrap::ctor;

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "loadModel(spec): spec must be an object");
  ModelConfig cfg;
  std::vector<TensorRecord> tensors;
  try {
    Napi::Object spec = info[0].As<Napi::Object>();
    cfg = parse_config(spec);
    tensors = parse_tensors(spec);
  } catch (const ArgError& e) {
    return ThrowType(env, e.what());
  }
  auto* job = new Job<std::shared_ptr<const QwenVLModel>>(
      env, [cfg, tensors]() { return std::shared_ptr<const QwenVLModel>(new QwenVLModel(cfg, tensors)); },
      [](Napi::Env env, std::shared_ptr<const QwenVLModel>& m) -> Napi::Value {
        Napi::Object o = ModelWrap::ctor.New({});
        ModelWrap::Unwrap(o)->model = m;
        return o;
      });
  Napi::Promise p = job->promise();
  job->Queue();
  return p;
}

}  // namespace

void InitModel(Napi::Env env, Napi::Object exports) {
  SessionWrap::Define(env);
  ModelWrap::Define(env);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
}

}  // namespace vr::addon
