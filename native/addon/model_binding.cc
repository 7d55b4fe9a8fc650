// loadModel(spec) -> Promise<Model>; model.createSession() -> Session; session.prefill(..) / session.generate(..)
// -> Promises. Heavy work runs on the libuv pool (AsyncWorker) so progress output and SIGINT keep working; every
// argument is checked here and engine errors (vr::Error, std::bad_alloc) become rejected promises.
// spec.device 'cpu' (default) | 'cuda': the CPU model (model/qwen_vl) or the CUDA one (cuda/model/gpu_session,
// CUDA builds and the emulator addon); both sessions take the same inputs and return the same results, and the
// whole decode loop runs inside one generate() call (no N-API crossing per token).
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
#if defined(VREFLECT_HAVE_CUDA)
#include "cuda/model/gpu_session.h"
#endif

namespace vr::addon {

namespace {

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

// One session of either device, behind the calls the wrapper makes.
struct AnySession {
  std::shared_ptr<Session> cpu;
#if defined(VREFLECT_HAVE_CUDA)
  std::shared_ptr<cuda::GpuSession> gpu;
#endif
  PrefillOutput prefill(const PrefillInput& in) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return gpu->prefill(in);
#endif
    return cpu->prefill(in);
  }
  GenerateResult generate(const GenerateOptions& opt) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return gpu->generate(opt);
#endif
    return cpu->generate(opt);
  }
  int64_t cache_len() const {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return gpu->cache_len();
#endif
    return cpu ? cpu->cache_len() : 0;
  }
  const Progress* progress() const {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return &gpu->progress();
#endif
    return cpu ? &cpu->progress() : nullptr;
  }
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
  void Init(std::shared_ptr<AnySession> s) { session_ = std::move(s); }

 private:
  Napi::Value CacheLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(session_ ? session_->cache_len() : 0));
  }

  // {done, total} of the running (or last) prefill; safe to read while it runs (atomics).
  Napi::Value GetProgress(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    const Progress* p = session_ ? session_->progress() : nullptr;
    o.Set("done", double(p ? p->done.load() : 0));
    o.Set("total", double(p ? p->total.load() : 0));
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
      in->prefill_chunk = opt_int(o, "prefillChunk", 0, "prefill", 0, int64_t(1) << 30);
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<AnySession> s = session_;
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
          o.Set("prefillChunk", double(r.prefill_chunk));
          if (r.llm_scratch_bytes > 0) {  // the CUDA session: its buffers, for the memory plan's check
            Napi::Object b = Napi::Object::New(env);
            b.Set("vit", double(r.vit_scratch_bytes));
            b.Set("llm", double(r.llm_scratch_bytes));
            b.Set("prompt", double(r.prompt_bytes));
            b.Set("features", double(r.feature_bytes));
            o.Set("deviceBytes", b);
          }
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
    std::shared_ptr<AnySession> s = session_;
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

  std::shared_ptr<AnySession> session_;
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
  std::shared_ptr<const QwenVLModel> model;  // --device cpu
#if defined(VREFLECT_HAVE_CUDA)
  std::shared_ptr<cuda::GpuQwenVL> gpu;      // --device cuda
#endif

 private:
  Napi::Value CreateSession(const Napi::CallbackInfo& info) {
    auto s = std::make_shared<AnySession>();
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) s->gpu = std::make_shared<cuda::GpuSession>(gpu);
#endif
    if (model) s->cpu = std::make_shared<Session>(model);
    Napi::Object o = SessionWrap::ctor.New({});
    SessionWrap::Unwrap(o)->Init(std::move(s));
    return o;
  }
  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("mappedBytes", double(model ? model->weights().mapped_bytes() : 0));
    o.Set("convertedBytes", double(model ? model->weights().owned_bytes() : 0));
#if defined(VREFLECT_HAVE_CUDA)
    o.Set("deviceBytes", double(gpu ? gpu->weight_bytes() : 0));
#else
    o.Set("deviceBytes", 0.0);
#endif
    return o;
  }
};
Napi::FunctionReference ModelWrap::ctor;

// The loaded model of either device (one of the two is set).
struct LoadedModel {
  std::shared_ptr<const QwenVLModel> cpu;
#if defined(VREFLECT_HAVE_CUDA)
  std::shared_ptr<cuda::GpuQwenVL> gpu;
#endif
  std::string device_name;  // what runs the model: "cpu", the GPU's name, "CUDA emulator (CPU)"
};

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "loadModel(spec): spec must be an object");
  ModelConfig cfg;
  std::vector<TensorRecord> tensors;
  bool cuda = false;
  try {
    Napi::Object spec = info[0].As<Napi::Object>();
    cfg = parse_config(spec, "loadModel");
    tensors = parse_records(need(spec, "tensors", "loadModel"), "loadModel");
    Napi::Value dv = spec.Get("device");
    if (!dv.IsUndefined()) {
      const std::string d = dv.IsString() ? dv.As<Napi::String>().Utf8Value() : "";
      if (d != "cpu" && d != "cuda") throw ArgError("loadModel: 'device' must be 'cpu' or 'cuda'");
      cuda = d == "cuda";
    }
  } catch (const ArgError& e) {
    return ThrowType(env, e.what());
  }
#if !defined(VREFLECT_HAVE_CUDA)
  if (cuda) return ThrowError(env, "--device cuda: this build has no CUDA backend (VREFLECT_CUDA=ON npm rebuild where nvcc is on PATH)");
#endif
  auto* job = new Job<LoadedModel>(
      env,
      [cfg, tensors, cuda]() {
        LoadedModel m;
#if defined(VREFLECT_HAVE_CUDA)
        if (cuda) {
          m.gpu = std::make_shared<cuda::GpuQwenVL>(cfg, tensors);
          m.device_name = cuda::cuda_device_name();
          return m;
        }
#endif
        (void)cuda;
        m.cpu = std::shared_ptr<const QwenVLModel>(new QwenVLModel(cfg, tensors));
        m.device_name = "cpu";
        return m;
      },
      [](Napi::Env env, LoadedModel& m) -> Napi::Value {
        Napi::Object o = ModelWrap::ctor.New({});
        ModelWrap* w = ModelWrap::Unwrap(o);
        w->model = m.cpu;
#if defined(VREFLECT_HAVE_CUDA)
        w->gpu = m.gpu;
        o.Set("device", m.gpu ? "cuda" : "cpu");
#else
        o.Set("device", "cpu");
#endif
        o.Set("deviceName", m.device_name);
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
