// Image preprocessing bindings (native/image):
//   resizeBicubic(src: Uint8Array, width, height, channels, outWidth, outHeight) -> Uint8Array     (sync)
//   preprocessImage({rgb, width, height, outWidth, outHeight, rescale?, mean?, std?, patch?, merge?,
//                    temporalPatch?}) -> Promise<{pixelValues: Float32Array, resized: Uint8Array}>
// preprocessImage resizes (Pillow bicubic), normalises and patchifies in one call on the libuv pool, so an 8K
// image never blocks the event loop and the float output is written only once.
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "core/error.h"
#include "image/patchify.h"
#include "image/resample.h"

namespace vr::addon {

namespace {

struct ArgError : std::runtime_error {
  explicit ArgError(const std::string& m) : std::runtime_error(m) {}
};

int int_arg(const Napi::Value& v, const std::string& what, int lo, int hi) {
  if (!v.IsNumber()) throw ArgError(what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != double(int64_t(d)) || d < lo || d > hi)
    throw ArgError(what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int(d);
}

int opt_int(const Napi::Object& o, const char* key, int dflt, int lo, int hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return int_arg(v, std::string("preprocessImage: '") + key + "'", lo, hi);
}

double opt_double(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw ArgError(std::string("preprocessImage: '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

void opt_triple(const Napi::Object& o, const char* key, double* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return;
  const std::string what = std::string("preprocessImage: '") + key + "'";
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throw ArgError(what + " must be an array of 3 numbers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throw ArgError(what + " must be an array of 3 numbers");
    out[i] = e.As<Napi::Number>().DoubleValue();
  }
}

// Checks that a Uint8Array holds exactly width*height*channels bytes.
Napi::Uint8Array pixels_arg(const Napi::Value& v, int w, int h, int c, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw ArgError(what + " must be a Uint8Array (or Buffer)");
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  const size_t want = size_t(w) * size_t(h) * size_t(c);
  if (a.ByteLength() != want)
    throw ArgError(what + " has " + std::to_string(a.ByteLength()) + " bytes, " + std::to_string(w) + "x" +
                   std::to_string(h) + "x" + std::to_string(c) + " needs " + std::to_string(want));
  return a;
}

// Hands a malloc'ed block to JS without copying; freed by the garbage collector.
Napi::ArrayBuffer adopt(Napi::Env env, void* data, size_t bytes) {
  return Napi::ArrayBuffer::New(env, data, bytes, [](Napi::Env, void* p) { std::free(p); });
}

constexpr int kMaxSide = 1 << 20;

Napi::Value ResizeBicubic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() != 6) throw ArgError("resizeBicubic(src, width, height, channels, outWidth, outHeight)");
    const int w = int_arg(info[1], "resizeBicubic: width", 1, kMaxSide);
    const int h = int_arg(info[2], "resizeBicubic: height", 1, kMaxSide);
    const int c = int_arg(info[3], "resizeBicubic: channels", 1, 4);
    const int ow = int_arg(info[4], "resizeBicubic: outWidth", 1, kMaxSide);
    const int oh = int_arg(info[5], "resizeBicubic: outHeight", 1, kMaxSide);
    Napi::Uint8Array src = pixels_arg(info[0], w, h, c, "resizeBicubic: src");
    std::vector<uint8_t> out = image::resize_bicubic(src.Data(), w, h, c, ow, oh);
    Napi::Uint8Array r = Napi::Uint8Array::New(env, out.size());
    std::memcpy(r.Data(), out.data(), out.size());
    return r;
  } catch (const ArgError& e) {
    return ThrowType(env, e.what());
  } catch (const std::bad_alloc&) {
    return ThrowError(env, "resizeBicubic: out of memory");
  } catch (const std::exception& e) {
    return ThrowError(env, e.what());
  }
}

class PreprocessJob : public Napi::AsyncWorker {
 public:
  PreprocessJob(Napi::Env env, Napi::Uint8Array src, int w, int h, int ow, int oh, image::PatchifyParams p)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), src_(src.Data()), w_(w), h_(h),
        ow_(ow), oh_(oh), p_(p) {
    src_ref_ = Napi::Persistent(src);  // keeps the input alive while the worker reads it
  }
  ~PreprocessJob() override {
    std::free(pixels_);
    std::free(resized_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      std::vector<uint8_t> rgb = image::resize_bicubic(src_, w_, h_, 3, ow_, oh_);
      resized_bytes_ = rgb.size();
      resized_ = static_cast<uint8_t*>(std::malloc(resized_bytes_));
      const int64_t rows = int64_t(ow_ / p_.patch) * (oh_ / p_.patch);
      pixel_count_ = size_t(rows * image::patch_row_size(p_));
      pixels_ = static_cast<float*>(std::malloc(pixel_count_ * sizeof(float)));
      if (!resized_ || !pixels_) throw std::bad_alloc();
      std::memcpy(resized_, rgb.data(), resized_bytes_);
      image::normalize_patchify(resized_, ow_, oh_, p_, pixels_);
    } catch (const std::bad_alloc&) {
      SetError("preprocessImage: out of memory for a " + std::to_string(ow_) + "x" + std::to_string(oh_) + " image");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    Napi::ArrayBuffer pv = adopt(env, pixels_, pixel_count_ * sizeof(float));
    Napi::ArrayBuffer rs = adopt(env, resized_, resized_bytes_);
    pixels_ = nullptr;  // owned by the ArrayBuffers now
    resized_ = nullptr;
    o.Set("pixelValues", Napi::Float32Array::New(env, pixel_count_, pv, 0));
    o.Set("resized", Napi::Uint8Array::New(env, resized_bytes_, rs, 0));
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> src_ref_;
  const uint8_t* src_;
  int w_, h_, ow_, oh_;
  image::PatchifyParams p_;
  float* pixels_ = nullptr;
  size_t pixel_count_ = 0;
  uint8_t* resized_ = nullptr;
  size_t resized_bytes_ = 0;
};

Napi::Value PreprocessImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() != 1 || !info[0].IsObject()) throw ArgError("preprocessImage({rgb, width, height, outWidth, outHeight, ...})");
    Napi::Object o = info[0].As<Napi::Object>();
    const int w = int_arg(o.Get("width"), "preprocessImage: 'width'", 1, kMaxSide);
    const int h = int_arg(o.Get("height"), "preprocessImage: 'height'", 1, kMaxSide);
    const int ow = int_arg(o.Get("outWidth"), "preprocessImage: 'outWidth'", 1, kMaxSide);
    const int oh = int_arg(o.Get("outHeight"), "preprocessImage: 'outHeight'", 1, kMaxSide);
    Napi::Uint8Array src = pixels_arg(o.Get("rgb"), w, h, 3, "preprocessImage: 'rgb'");
    image::PatchifyParams p;
    p.rescale = opt_double(o, "rescale", p.rescale);
    opt_triple(o, "mean", p.mean);
    opt_triple(o, "std", p.std);
    p.patch = opt_int(o, "patch", p.patch, 1, 1024);
    p.merge = opt_int(o, "merge", p.merge, 1, 64);
    p.temporal = opt_int(o, "temporalPatch", p.temporal, 1, 64);
    const int factor = p.patch * p.merge;
    if (ow % factor || oh % factor)
      throw ArgError("preprocessImage: target size " + std::to_string(ow) + "x" + std::to_string(oh) +
                     " is not a multiple of " + std::to_string(factor));
    auto* job = new PreprocessJob(env, src, w, h, ow, oh, p);
    Napi::Promise promise = job->Promise();
    job->Queue();
    return promise;
  } catch (const ArgError& e) {
    return ThrowType(env, e.what());
  } catch (const std::exception& e) {
    return ThrowError(env, e.what());
  }
}

}  // namespace

void InitImage(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeBicubic", Napi::Function::New(env, ResizeBicubic));
  exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage));
}

}  // namespace vr::addon
