#include "addon/args.h"

namespace vr::addon {

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
double opt_num(const Napi::Object& o, const char* key, double dflt, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw ArgError(where + ": '" + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
int64_t int_in(const Napi::Object& o, const char* key, const std::string& where, int64_t lo, int64_t hi) {
  const double d = num(o, key, where);
  if (d != double(int64_t(d)) || d < double(lo) || d > double(hi))
    throw ArgError(where + ": '" + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                   "], got " + std::to_string(d));
  return int64_t(d);
}
int64_t opt_int(const Napi::Object& o, const char* key, int64_t dflt, const std::string& where, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return int_in(o, key, where, lo, hi);
}
bool opt_bool(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  // A string "false" must not silently mean the default (or true): anything but a boolean is a caller bug.
  if (!v.IsBoolean()) throw ArgError(std::string("'") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
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
    const double d = e.As<Napi::Number>().DoubleValue();
    if (d != double(int64_t(d))) throw ArgError(where + " must hold integers");
    r.push_back(int64_t(d));
  }
  return r;
}
Napi::Object obj(const Napi::Value& v, const std::string& where) {
  if (!v.IsObject()) throw ArgError(where + " must be an object");
  return v.As<Napi::Object>();
}

std::vector<int32_t> i32(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = need(o, key, where);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw ArgError(where + ": '" + key + "' must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}
std::vector<float> f32(const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw ArgError(what + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

// The model part of the spec: the same layout loadModel takes (model_binding.cc).
ModelConfig parse_config(const Napi::Object& spec, const std::string& where) {
  const std::string w = where + " config";
  Napi::Object c = obj(need(spec, "config", where), where + ": 'config'");
  Napi::Object t = obj(need(c, "text", w), w + ".text"), v = obj(need(c, "vision", w), w + ".vision");
  const int64_t big = int64_t(1) << 30;
  ModelConfig m;
  m.text.hidden = int(int_in(t, "hidden", w + ".text", 1, big));
  m.text.layers = int(int_in(t, "layers", w + ".text", 1, 4096));
  m.text.heads = int(int_in(t, "heads", w + ".text", 1, 4096));
  m.text.kv_heads = int(int_in(t, "kvHeads", w + ".text", 1, 4096));
  m.text.head_dim = int(int_in(t, "headDim", w + ".text", 2, 4096));
  m.text.intermediate = int(int_in(t, "intermediate", w + ".text", 1, big));
  m.text.vocab = int(int_in(t, "vocab", w + ".text", 1, big));
  m.text.eps = float(num(t, "rmsEps", w + ".text"));
  m.text.rope_theta = float(num(t, "ropeTheta", w + ".text"));
  const std::vector<int64_t> sec = int_list(need(t, "mropeSection", w + ".text"), w + ".text.mropeSection");
  if (sec.size() != 3) throw ArgError(w + ".text.mropeSection must have 3 entries");
  for (int i = 0; i < 3; i++) m.text.mrope_section[i] = int(sec[size_t(i)]);
  m.text.tie_embeddings = opt_bool(t, "tieEmbeddings", false);
  m.vision.depth = int(int_in(v, "depth", w + ".vision", 1, 4096));
  m.vision.hidden = int(int_in(v, "hidden", w + ".vision", 1, big));
  m.vision.heads = int(int_in(v, "heads", w + ".vision", 1, 4096));
  m.vision.intermediate = int(int_in(v, "intermediate", w + ".vision", 1, big));
  m.vision.out_hidden = int(int_in(v, "outHidden", w + ".vision", 1, big));
  m.vision.patch = int(int_in(v, "patch", w + ".vision", 1, 4096));
  m.vision.temporal_patch = int(int_in(v, "temporalPatch", w + ".vision", 1, 64));
  m.vision.merge = int(int_in(v, "merge", w + ".vision", 1, 64));
  m.vision.window_size = int(int_in(v, "windowSize", w + ".vision", 1, 1 << 20));
  m.vision.in_channels = int(int_in(v, "inChannels", w + ".vision", 1, 64));
  m.vision.rope_theta = float(opt_num(v, "ropeTheta", 10000.0, w + ".vision"));
  for (int64_t b : int_list(need(v, "fullattBlocks", w + ".vision"), w + ".vision.fullattBlocks"))
    m.vision.fullatt_blocks.push_back(int(b));
  m.image_token_id = int(int_in(c, "imageTokenId", w, 0, big));
  m.vision_start_token_id = int(int_in(c, "visionStartTokenId", w, 0, big));
  const std::string dt = spec.Get("dtype").IsString() ? spec.Get("dtype").As<Napi::String>().Utf8Value() : "fp32";
  if (dt == "fp32" || dt == "f32") m.compute = DType::F32;
  else if (dt == "bf16") m.compute = DType::BF16;
  else throw ArgError(where + ": dtype must be 'fp32' or 'bf16', got '" + dt + "'");
  return m;
}

std::vector<TensorRecord> parse_records(const Napi::Value& tv, const std::string& where) {
  if (!tv.IsArray()) throw ArgError(where + ": 'tensors' must be an array");
  Napi::Array a = tv.As<Napi::Array>();
  std::vector<TensorRecord> r;
  for (uint32_t i = 0; i < a.Length(); i++) {
    const std::string w = where + " tensors[" + std::to_string(i) + "]";
    Napi::Object o = obj(a.Get(i), w);
    TensorRecord t;
    t.name = str(o, "name", w);
    t.file = str(o, "file", w);
    const double off = num(o, "offset", w), nb = num(o, "nbytes", w);
    if (off < 0 || nb < 0 || off != double(int64_t(off)) || nb != double(int64_t(nb)))
      throw ArgError(w + " (" + t.name + "): offset/nbytes must be non-negative integers");
    t.offset = uint64_t(off);
    t.nbytes = uint64_t(nb);
    if (!dtype_from_name(str(o, "dtype", w), &t.dtype)) throw ArgError(w + " (" + t.name + "): unsupported dtype");
    t.shape = int_list(need(o, "shape", w), w + ".shape");
    r.push_back(std::move(t));
  }
  return r;
}

}  // namespace vr::addon
