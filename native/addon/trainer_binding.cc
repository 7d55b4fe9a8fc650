// createTrainer(spec) -> Promise<Trainer>: the native training step (native/train/trainer.h) for TypeScript.
//
//   spec = { config: <as loadModel>, dtype: 'fp32' | 'bf16', tensors: <records as loadModel, plus any
//            box_feature_resampler.* / student_resampler.* records of the checkpoint>,
//            device = 'cpu' | 'cuda', optimizerStates = 'auto' | 'gpu' | 'host' (cuda only; 'auto' is 'gpu' here:
//            the CLI resolves it from the memory plan first), streamChunk (cuda host placement: values per
//            streamed optimizer chunk, tests; default GpuTrainParams::kDefaultChunkElems),
//            train: { stage: 1 | 2, latentCount = 8, lambdaResampler = 0.5 (stage 1) | 1.0 (stage 2),
//                     lambdaAttn = 1.0, seed = 42, lvrId = -1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8,
//                     weightDecay = 0.1, gradientCheckpointing = true } }
//   trainer.forwardBackward(batch, { gradScale = 1, captureAttention = false, captureBoxes = all })
//     -> Promise<Losses>   one micro-batch; gradients accumulate. With captureAttention, Losses.attention lists
//     the first captureBoxes boxes: { box, sample, image, grid: [t, h, w] (patches), tokens: S,
//     boxTokens: Int32Array (the box's tokens local to the sample), teacher: Float32Array [K*S] (BCM map in the
//     sample's token coordinates, 0 outside the box, as the KL sees it), student: Float32Array [K*S] | null
//     (stage 1) } (trainer.h BoxAttention)
//   trainer.optimizerStep({ lr, maxGradNorm = 1 }) -> Promise<{ gradNorm, step }>   clip, AdamW, zero gradients
//   trainer.step(batch, { lr, maxGradNorm = 1 }) -> Promise<Losses & { gradNorm, step }>   both (no accumulation)
//   trainer.tensorList() -> [{ name, shape, trainable, decay }]
//   trainer.getTensor(name, { grad = false, dtype = 'fp32' }) -> Float32Array copy of the fp32 master weights (or
//     gradient); dtype 'bf16' -> Uint16Array of bf16 bits (round to nearest even), what checkpoints store
//   trainer.setTensors({ name: Float32Array, ... })   replaces master weights (shapes checked)
//   trainer.saveState(path) -> Promise   weights + AdamW moments + step, safetensors, atomic (tmp + rename)
//   trainer.loadState({ step, tensors: records }) -> Promise   the records of a saveState file (TS parses headers)
//   trainer.stepCount, trainer.memory() -> { paramBytes (host ParamStore arrays), pinnedBytes (staging),
//     pinned (whether the staging is page-locked), deviceParamBytes (the device parameter arena),
//     deviceFrozenBytes (the frozen vision tower), deviceDecoderBytes (the training decoder's activation arena,
//     grown to the largest micro-batch so far; 0 before the first), checkpointing (the decoder recomputes each
//     layer), device }: what was allocated, for the memory plan's test
// device 'cuda' (CUDA builds and the emulator addon): cuda::GpuTrainer (bf16 by construction, so dtype is
// ignored; gradientCheckpointing on or off as on the CPU; captureAttention fills the CPU's AttentionCapture). Where its state lives depends on
// the placement (cuda/model/gpu_train_params.h): getTensor's weights come from the host copy (refreshed from the
// device once per change under `gpu`), gradients per tensor from the device; setTensors writes each tensor to
// the host copy and the device; saveState / loadState stream per tensor (GpuTrainer::save_state).
// `batch` is src/data/batch.ts's TrainBatch (typed arrays, field names as there). Losses = { loss, lossCe,
// lossResampler, lossMse, lossKl, resamplerSkipped, tokens, targets, boxes }. Every argument is checked here or
// in the engine; errors reject the promise (or throw a TypeError for malformed arguments).
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
#include "train/state_io.h"
#include "train/trainer.h"
#if defined(VREFLECT_HAVE_CUDA)
#include "cuda/model/gpu_session.h"  // require_cuda_device
#include "cuda/model/gpu_trainer.h"
#endif

namespace vr::addon {

namespace {

// Either trainer behind the calls the wrapper makes. The GPU one's weights change on the device (gpu placement);
// `host_fresh` says whether params() holds them (set by a download, cleared by every optimizer step), so saving a
// checkpoint tensor by tensor downloads once.
struct AnyTrainer {
  std::shared_ptr<Trainer> cpu;
#if defined(VREFLECT_HAVE_CUDA)
  std::shared_ptr<cuda::GpuTrainer> gpu;
  bool host_fresh = false;
#endif
  bool on_gpu() const {
#if defined(VREFLECT_HAVE_CUDA)
    return gpu != nullptr;
#else
    return false;
#endif
  }
  StepLosses forward_backward(const TrainBatch& b, double scale, AttentionCapture* capture = nullptr) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) {
      return gpu->forward_backward(b, scale, capture);
    }
#endif
    return cpu->forward_backward(b, scale, capture);
  }
  double optimizer_step(double lr, double max_norm) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) {
      host_fresh = false;
      return gpu->optimizer_step(lr, max_norm);
    }
#endif
    return cpu->optimizer_step(lr, max_norm);
  }
  int64_t step() const {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return gpu->step();
#endif
    return cpu->step();
  }
  // The ParamStore without its values being read (names, shapes, flags).
  ParamStore& layout() {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return gpu->params();
#endif
    return cpu->params();
  }
  // The ParamStore with current master weights, for reading them.
  ParamStore& params() {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) {
      if (!host_fresh) gpu->download();
      host_fresh = true;
      return gpu->params();
    }
#endif
    return cpu->params();
  }
  // One tensor's gradient into dst (numel floats): the CPU's host array, the GPU's device gradient.
  void read_grad(const Param& p, float* dst) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) return gpu->device_params().read_grad(p, dst);
#endif
    VR_CHECK(p.g, "getTensor: ", p.name, " has no gradient");
    std::memcpy(dst, p.g, size_t(p.numel) * sizeof(float));
  }
  // Replaces tensors' master weights and refreshes their compute copies (the GPU: per tensor, host copy and device).
  void set_weights(const std::vector<std::pair<Param*, std::vector<float>>>& updates) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) {
      for (auto& u : updates) gpu->device_params().write_state(*u.first, StateField::Weights, u.second.data());
      return;
    }
#endif
    for (auto& u : updates) std::memcpy(u.first->w, u.second.data(), u.second.size() * sizeof(float));
    cpu->weights_changed();
  }
  void save_state(const std::string& path) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) {
      gpu->save_state(path);  // streams per tensor
      return;
    }
#endif
    save_trainer_state(*cpu, path);
  }
  void load_state(const std::vector<TensorRecord>& recs, int64_t step) {
#if defined(VREFLECT_HAVE_CUDA)
    if (gpu) {
      gpu->load_state(recs, step);  // per tensor into the host copy and the device; gradients zeroed
      host_fresh = true;
      return;
    }
#endif
    load_trainer_state(*cpu, recs, step);
  }
};

TrainerConfig parse_train(const Napi::Object& spec) {
  const std::string w = "createTrainer train";
  Napi::Object t = obj(need(spec, "train", "createTrainer"), "createTrainer: 'train'");
  TrainerConfig c;
  c.stage = int(int_in(t, "stage", w, 1, 2));
  c.latent_count = int(opt_int(t, "latentCount", 8, w, 1, 1024));
  c.lambda_resampler = opt_num(t, "lambdaResampler", c.stage == 1 ? 0.5 : 1.0, w);
  c.lambda_attn = opt_num(t, "lambdaAttn", 1.0, w);
  c.seed = uint64_t(opt_int(t, "seed", 42, w, 0, int64_t(1) << 52));
  c.lvr_id = int(opt_int(t, "lvrId", -1, w, -1, int64_t(1) << 30));
  c.adamw.beta1 = opt_num(t, "beta1", 0.9, w);
  c.adamw.beta2 = opt_num(t, "beta2", 0.999, w);
  c.adamw.eps = opt_num(t, "eps", 1e-8, w);
  c.adamw.weight_decay = opt_num(t, "weightDecay", 0.1, w);
  c.gradient_checkpointing = opt_bool(t, "gradientCheckpointing", true);
  return c;
}

TrainBatch parse_batch(const Napi::Value& bv) {
  const std::string w = "trainer batch";
  Napi::Object o = obj(bv, w);
  TrainBatch b;
  b.input_ids = i32(o, "inputIds", w);
  b.cu_seqlens = i32(o, "cuSeqlens", w);
  b.positions = i32(o, "positions", w);
  b.targets = i32(o, "targets", w);
  b.num_targets = int_in(o, "numTargets", w, 0, int64_t(1) << 40);
  b.pixel_values = f32(need(o, "pixelValues", w), w + ": 'pixelValues'");
  b.patch_dim = int_in(o, "patchDim", w, 0, int64_t(1) << 20);
  const std::vector<int32_t> grids = i32(o, "imageGrids", w);
  if (grids.size() % 3) throw ArgError(w + ": 'imageGrids' must hold (t, h, w) triples");
  for (size_t i = 0; i < grids.size(); i += 3) {
    if (grids[i] < 1 || grids[i + 1] < 1 || grids[i + 2] < 1 || grids[i] > 1024 || grids[i + 1] > 1 << 16 ||
        grids[i + 2] > 1 << 16)
      throw ArgError(w + ": image grid " + std::to_string(i / 3) + " must have positive (t, h, w)");
    b.grids.push_back(ImageGrid{grids[i], grids[i + 1], grids[i + 2]});
  }
  b.cu_image_tokens = i32(o, "cuImageTokens", w);
  b.cu_sample_visual = i32(o, "cuSampleVisual", w);
  b.latent_count = int(int_in(o, "latentCount", w, 0, 1024));
  b.box_token_idx = i32(o, "boxTokenIdx", w);
  b.box_local_idx = i32(o, "boxLocalIdx", w);
  b.cu_box_tokens = i32(o, "cuBoxTokens", w);
  b.box_sample = i32(o, "boxSample", w);
  b.lvr_slots = i32(o, "lvrSlots", w);
  return b;
}

// One captured box (trainer.h BoxAttention) as a JS object; the maps are copied into fresh typed arrays.
Napi::Object box_attention_obj(Napi::Env env, const BoxAttention& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("box", double(a.box));
  o.Set("sample", a.sample);
  o.Set("image", a.image);
  Napi::Array g = Napi::Array::New(env, 3);
  g.Set(uint32_t(0), a.grid.t);
  g.Set(uint32_t(1), a.grid.h);
  g.Set(uint32_t(2), a.grid.w);
  o.Set("grid", g);
  o.Set("tokens", double(a.tokens));
  Napi::Int32Array idx = Napi::Int32Array::New(env, a.box_tokens.size());
  std::memcpy(idx.Data(), a.box_tokens.data(), a.box_tokens.size() * sizeof(int32_t));
  o.Set("boxTokens", idx);
  auto floats = [&](const std::vector<float>& v) {
    Napi::Float32Array f = Napi::Float32Array::New(env, v.size());
    std::memcpy(f.Data(), v.data(), v.size() * sizeof(float));
    return f;
  };
  o.Set("teacher", floats(a.teacher));
  o.Set("student", a.student.empty() ? env.Null() : Napi::Value(floats(a.student)));
  return o;
}

Napi::Object losses_obj(Napi::Env env, const StepLosses& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", l.loss);
  o.Set("lossCe", l.loss_ce);
  o.Set("lossResampler", l.loss_resampler);
  o.Set("lossMse", l.loss_mse);
  o.Set("lossKl", l.loss_kl);
  o.Set("resamplerSkipped", l.resampler_skipped);
  o.Set("tokens", double(l.tokens));
  o.Set("targets", double(l.targets));
  o.Set("boxes", double(l.boxes));
  return o;
}

struct ForwardResult {
  StepLosses losses;
  std::shared_ptr<AttentionCapture> capture;  // null unless requested
};

struct StepResult {
  StepLosses losses;
  double grad_norm = 0;
  int64_t step = 0;
};

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::FunctionReference ctor;
  static void Define(Napi::Env env) {
    Napi::Function f = DefineClass(
        env, "Trainer",
        {InstanceMethod("forwardBackward", &TrainerWrap::ForwardBackward),
         InstanceMethod("optimizerStep", &TrainerWrap::OptimizerStep), InstanceMethod("step", &TrainerWrap::Step),
         InstanceMethod("tensorList", &TrainerWrap::TensorList), InstanceMethod("getTensor", &TrainerWrap::GetTensor),
         InstanceMethod("setTensors", &TrainerWrap::SetTensors), InstanceMethod("saveState", &TrainerWrap::SaveState),
         InstanceMethod("loadState", &TrainerWrap::LoadState), InstanceMethod("memory", &TrainerWrap::Memory),
         InstanceAccessor("stepCount", &TrainerWrap::StepCount, nullptr)});
    ctor = Napi::Persistent(f);
    ctor.SuppressDestruct();
  }
  TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {}
  std::shared_ptr<AnyTrainer> trainer;

 private:
  // Queues `work` unless another call is running on this trainer.
  template <class R>
  Napi::Value run(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done) {
    if (busy_) return ThrowError(env, "trainer is busy: wait for the previous call to finish");
    busy_ = true;
    auto* job = new Job<R>(env, std::move(work), std::move(done), [this]() {
      busy_ = false;
      Unref();
    });
    Ref();  // keep this wrapper alive while the job runs
    Napi::Promise p = job->promise();
    job->Queue();
    return p;
  }

  Napi::Value ForwardBackward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto batch = std::make_shared<TrainBatch>();
    double scale = 1.0;
    std::shared_ptr<AttentionCapture> capture;
    try {
      if (info.Length() < 1) throw ArgError("forwardBackward(batch, options): batch is missing");
      *batch = parse_batch(info[0]);
      if (info.Length() > 1 && !info[1].IsUndefined()) {
        Napi::Object o = obj(info[1], "forwardBackward options");
        scale = opt_num(o, "gradScale", 1.0, "forwardBackward");
        Napi::Value ca = o.Get("captureAttention");
        if (!ca.IsUndefined() && !ca.IsNull() && !ca.IsBoolean())
          throw ArgError("forwardBackward: 'captureAttention' must be a boolean");
        if (ca.IsBoolean() && ca.As<Napi::Boolean>().Value()) {
          capture = std::make_shared<AttentionCapture>();
          capture->max_boxes = opt_int(o, "captureBoxes", -1, "forwardBackward", 1, int64_t(1) << 40);
        } else if (!o.Get("captureBoxes").IsUndefined()) {
          throw ArgError("forwardBackward: 'captureBoxes' needs captureAttention: true");
        }
      }
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<AnyTrainer> t = trainer;
    return run<ForwardResult>(
        env,
        [t, batch, scale, capture]() {
          ForwardResult r;
          r.losses = t->forward_backward(*batch, scale, capture.get());
          r.capture = capture;
          return r;
        },
        [](Napi::Env env, ForwardResult& r) -> Napi::Value {
          Napi::Object o = losses_obj(env, r.losses);
          if (r.capture) {
            Napi::Array a = Napi::Array::New(env, r.capture->boxes.size());
            for (size_t i = 0; i < r.capture->boxes.size(); i++)
              a.Set(uint32_t(i), box_attention_obj(env, r.capture->boxes[i]));
            o.Set("attention", a);
          }
          return o;
        });
  }

  static void step_options(const Napi::CallbackInfo& info, size_t i, const char* fn, double* lr, double* max_norm) {
    if (info.Length() <= i) throw ArgError(std::string(fn) + ": options { lr, maxGradNorm } are missing");
    Napi::Object o = obj(info[i], std::string(fn) + " options");
    *lr = num(o, "lr", fn);
    *max_norm = opt_num(o, "maxGradNorm", 1.0, fn);
  }

  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double lr = 0, max_norm = 0;
    try {
      step_options(info, 0, "optimizerStep", &lr, &max_norm);
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<AnyTrainer> t = trainer;
    return run<StepResult>(
        env,
        [t, lr, max_norm]() {
          StepResult r;
          r.grad_norm = t->optimizer_step(lr, max_norm);
          r.step = t->step();
          return r;
        },
        [](Napi::Env env, StepResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("gradNorm", r.grad_norm);
          o.Set("step", double(r.step));
          return o;
        });
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto batch = std::make_shared<TrainBatch>();
    double lr = 0, max_norm = 0;
    try {
      if (info.Length() < 1) throw ArgError("step(batch, options): batch is missing");
      *batch = parse_batch(info[0]);
      step_options(info, 1, "step", &lr, &max_norm);
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<AnyTrainer> t = trainer;
    return run<StepResult>(
        env,
        [t, batch, lr, max_norm]() {
          StepResult r;
          r.losses = t->forward_backward(*batch, 1.0);
          r.grad_norm = t->optimizer_step(lr, max_norm);
          r.step = t->step();
          return r;
        },
        [](Napi::Env env, StepResult& r) -> Napi::Value {
          Napi::Object o = losses_obj(env, r.losses);
          o.Set("gradNorm", r.grad_norm);
          o.Set("step", double(r.step));
          return o;
        });
  }

  Napi::Value TensorList(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& all = trainer->layout().all();
    Napi::Array a = Napi::Array::New(env, all.size());
    for (size_t i = 0; i < all.size(); i++) {
      const Param& p = *all[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", p.name);
      Napi::Array s = Napi::Array::New(env, p.shape.size());
      for (size_t d = 0; d < p.shape.size(); d++) s.Set(uint32_t(d), double(p.shape[d]));
      o.Set("shape", s);
      o.Set("trainable", p.trainable);
      o.Set("decay", p.decay);
      a.Set(uint32_t(i), o);
    }
    return a;
  }

  Napi::Value GetTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) return ThrowError(env, "trainer is busy: wait for the previous call to finish");
    if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "getTensor(name, options): name must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    bool grad = false, bf16 = false;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      try {
        grad = opt_bool(o, "grad", false);
      } catch (const ArgError& e) {
        return ThrowType(env, std::string("getTensor: ") + e.what());
      }
      Napi::Value dt = o.Get("dtype");
      if (dt.IsString()) {
        const std::string d = dt.As<Napi::String>().Utf8Value();
        if (d != "fp32" && d != "bf16") return ThrowType(env, "getTensor: dtype must be 'fp32' or 'bf16', got '" + d + "'");
        bf16 = d == "bf16";
      }
    }
    const Param* p = trainer->layout().find(name);
    if (!p) return ThrowError(env, "getTensor: unknown tensor " + name);
    if (grad && !p->trainable) return ThrowError(env, "getTensor: " + name + " is frozen and has no gradient");
    Napi::Float32Array a = Napi::Float32Array::New(env, size_t(p->numel));
    try {
      if (grad) {
        trainer->read_grad(*p, a.Data());  // the GPU trainer: this tensor's gradient from the device
      } else {
        trainer->params();  // the GPU trainer: device -> host weights once per change
        std::memcpy(a.Data(), p->w, size_t(p->numel) * sizeof(float));
      }
    } catch (const std::exception& e) {
      return ThrowError(env, std::string("getTensor: ") + e.what());
    }
    if (bf16) {
      Napi::Uint16Array h = Napi::Uint16Array::New(env, size_t(p->numel));
      convert_to_bf16(h.Data(), a.Data(), DType::F32, size_t(p->numel));
      return h;
    }
    return a;
  }

  Napi::Value SetTensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) return ThrowError(env, "trainer is busy: wait for the previous call to finish");
    if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "setTensors(map): map must be an object");
    Napi::Object m = info[0].As<Napi::Object>();
    Napi::Array keys = m.GetPropertyNames();
    std::vector<std::pair<Param*, std::vector<float>>> updates;  // all checked before any is applied
    try {
      for (uint32_t i = 0; i < keys.Length(); i++) {
        const std::string name = keys.Get(i).As<Napi::String>().Utf8Value();
        Param* p = trainer->layout().find(name);
        if (!p) throw ArgError("setTensors: unknown tensor " + name);
        std::vector<float> v = f32(m.Get(name), "setTensors: " + name);
        if (int64_t(v.size()) != p->numel)
          throw ArgError("setTensors: " + name + " has " + std::to_string(v.size()) + " values, expected " +
                         std::to_string(p->numel));
        updates.emplace_back(p, std::move(v));
      }
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    try {
      trainer->set_weights(updates);
    } catch (const std::exception& e) {
      return ThrowError(env, std::string("setTensors: ") + e.what());
    }
    return env.Undefined();
  }

  Napi::Value SaveState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "saveState(path): path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    std::shared_ptr<AnyTrainer> t = trainer;
    return run<bool>(
        env, [t, path]() { t->save_state(path); return true; },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  }

  Napi::Value LoadState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<TensorRecord> recs;
    int64_t step = 0;
    try {
      if (info.Length() < 1) throw ArgError("loadState(state): state is missing");
      Napi::Object o = obj(info[0], "loadState state");
      step = int_in(o, "step", "loadState", 0, int64_t(1) << 40);
      recs = parse_records(need(o, "tensors", "loadState"), "loadState");
    } catch (const ArgError& e) {
      return ThrowType(env, e.what());
    }
    std::shared_ptr<AnyTrainer> t = trainer;
    return run<bool>(
        env, [t, recs, step]() { t->load_state(recs, step); return true; },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("paramBytes", double(trainer->layout().bytes()));  // host bytes: no values read
    double pinned = 0, device = 0, frozen = 0, decoder = 0;
    bool is_pinned = false, checkpointing = trainer->cpu ? trainer->cpu->config().gradient_checkpointing : true;
#if defined(VREFLECT_HAVE_CUDA)
    if (trainer->gpu) {
      const cuda::GpuTrainParams& gp = trainer->gpu->device_params();
      pinned = double(gp.staging_bytes());
      is_pinned = gp.staging_pinned();
      device = double(gp.device_bytes());
      frozen = double(trainer->gpu->frozen_weight_bytes());
      decoder = double(trainer->gpu->llm().scratch_bytes());
      checkpointing = trainer->gpu->llm().checkpointing();
    }
#endif
    o.Set("pinnedBytes", pinned);
    o.Set("pinned", is_pinned);
    o.Set("deviceParamBytes", device);
    o.Set("deviceFrozenBytes", frozen);
    o.Set("deviceDecoderBytes", decoder);
    o.Set("checkpointing", checkpointing);
    o.Set("device", trainer->on_gpu() ? "cuda" : "cpu");
    return o;
  }

  Napi::Value StepCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(trainer ? trainer->step() : 0));
  }

  bool busy_ = false;
};
Napi::FunctionReference TrainerWrap::ctor;

// spec.device and spec.optimizerStates (see the top of this file).
struct DeviceSpec {
  bool cuda = false;
  std::string optimizer_states = "gpu";
  int64_t stream_chunk = 0;  // 0: the default
};

DeviceSpec parse_device(const Napi::Object& spec) {
  DeviceSpec d;
  Napi::Value dv = spec.Get("device");
  if (!dv.IsUndefined()) {
    const std::string s = dv.IsString() ? dv.As<Napi::String>().Utf8Value() : "";
    if (s != "cpu" && s != "cuda") throw ArgError("createTrainer: 'device' must be 'cpu' or 'cuda'");
    d.cuda = s == "cuda";
  }
  Napi::Value ov = spec.Get("optimizerStates");
  if (!ov.IsUndefined()) {
    const std::string s = ov.IsString() ? ov.As<Napi::String>().Utf8Value() : "";
    if (s != "auto" && s != "gpu" && s != "host")
      throw ArgError("createTrainer: 'optimizerStates' must be 'auto', 'gpu' or 'host'");
    if (!d.cuda) throw ArgError("createTrainer: 'optimizerStates' applies to device 'cuda' only");
    d.optimizer_states = s == "auto" ? "gpu" : s;
  }
  if (!spec.Get("streamChunk").IsUndefined()) {
    d.stream_chunk = opt_int(spec, "streamChunk", 0, "createTrainer", 1, int64_t(1) << 40);
    if (!d.cuda) throw ArgError("createTrainer: 'streamChunk' applies to device 'cuda' only");
  }
  return d;
}

Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "createTrainer(spec): spec must be an object");
  ModelConfig cfg;
  std::vector<TensorRecord> tensors;
  TrainerConfig tc;
  DeviceSpec dev;
  try {
    Napi::Object spec = info[0].As<Napi::Object>();
    cfg = parse_config(spec, "createTrainer");
    tensors = parse_records(need(spec, "tensors", "createTrainer"), "createTrainer");
    tc = parse_train(spec);
    dev = parse_device(spec);
  } catch (const ArgError& e) {
    return ThrowType(env, e.what());
  }
#if !defined(VREFLECT_HAVE_CUDA)
  if (dev.cuda) return ThrowError(env, "--device cuda: this build has no CUDA backend (VREFLECT_CUDA=ON npm rebuild where nvcc is on PATH)");
#endif
  auto* job = new Job<std::shared_ptr<AnyTrainer>>(
      env,
      [cfg, tensors, tc, dev]() {
        auto t = std::make_shared<AnyTrainer>();
#if defined(VREFLECT_HAVE_CUDA)
        if (dev.cuda) {
          cuda::require_cuda_device();
          t->gpu = std::make_shared<cuda::GpuTrainer>(cfg, tensors, tc, cuda::optimizer_placement_from_name(dev.optimizer_states),
                                                      nullptr, dev.stream_chunk);
          return t;
        }
#endif
        (void)dev;
        t->cpu = std::make_shared<Trainer>(cfg, tensors, tc);
        return t;
      },
      [](Napi::Env env, std::shared_ptr<AnyTrainer>& t) -> Napi::Value {
        Napi::Object o = TrainerWrap::ctor.New({});
        TrainerWrap::Unwrap(o)->trainer = t;
        o.Set("device", t->on_gpu() ? "cuda" : "cpu");
        return o;
      },
      nullptr);
  Napi::Promise p = job->promise();
  job->Queue();
  return p;
}

}  // namespace

void InitTrainer(Napi::Env env, Napi::Object exports) {
  TrainerWrap::Define(env);
  exports.Set("createTrainer", Napi::Function::New(env, CreateTrainer));
}

}  // namespace vr::addon
