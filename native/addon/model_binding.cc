// loadModel(spec) -> Promise<Model>; model.createSession() -> Session; session.prefill(..) / session.generate(..)
// -> Promises. Heavy work runs on the libuv pool (AsyncWorker) so progress output and SIGINT keep working; every
// argument is checked here and engine errors (vr::Error, std::bad_alloc) become rejected promises.
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/async_job.h"
#include "addon/bindings.h"
#include "core/error.h"
#include "model/qwen_vl.h"

namespace vr::addon {

namespace {

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

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
    cfg = parse_config(spec, "loadModel");
    tensors = parse_records(need(spec, "tensors", "loadModel"), "loadModel");
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
