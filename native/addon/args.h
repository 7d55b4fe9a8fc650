// Argument checking shared by the binding modules: every value that comes from JS is checked here and a bad one
// throws ArgError (the caller turns it into a JS TypeError); nothing reaches the engine unchecked.
#pragma once
#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace vr::addon {

struct ArgError : std::runtime_error {
  explicit ArgError(const std::string& m) : std::runtime_error(m) {}
};

Napi::Value need(const Napi::Object& o, const char* key, const std::string& where);
double num(const Napi::Object& o, const char* key, const std::string& where);
double opt_num(const Napi::Object& o, const char* key, double dflt, const std::string& where);
int64_t int_in(const Napi::Object& o, const char* key, const std::string& where, int64_t lo, int64_t hi);
int64_t opt_int(const Napi::Object& o, const char* key, int64_t dflt, const std::string& where, int64_t lo, int64_t hi);
bool opt_bool(const Napi::Object& o, const char* key, bool dflt);
std::string str(const Napi::Object& o, const char* key, const std::string& where);
std::vector<int64_t> int_list(const Napi::Value& v, const std::string& where);
Napi::Object obj(const Napi::Value& v, const std::string& where);
std::vector<int32_t> i32(const Napi::Object& o, const char* key, const std::string& where);
std::vector<float> f32(const Napi::Value& v, const std::string& what);
// The model part of a spec: the layout loadModel and createTrainer both take (src/native). `where` names the call.
ModelConfig parse_config(const Napi::Object& spec, const std::string& where);
// Tensor records (name, file, offset, nbytes, dtype, shape) as src/model/checkpoint.ts builds them.
std::vector<TensorRecord> parse_records(const Napi::Value& tv, const std::string& where);

}  // namespace vr::addon
