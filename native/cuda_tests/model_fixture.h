// The tiny golden checkpoint for the CUDA model tests: test/golden/models/tiny-flat (fp32, one safetensors
// file). Its TensorRecord list is built here the way the addon receives it from TypeScript (src/model/
// checkpoint.ts): name, file, absolute byte offset, byte count, dtype, shape, read from the safetensors header.
// The configuration mirrors its config.json (test/golden/README.md §2).
#pragma once
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "model/config.h"
#include "model/weights.h"

namespace vr::test {

// The checkpoint directory: $VREFLECT_TINY_FLAT, else test/golden/models/tiny-flat under the working directory,
// else next to the test binary's build folder (build/ or build/Release/ in the repository root).
inline std::string tiny_flat_dir() {
  if (const char* e = std::getenv("VREFLECT_TINY_FLAT")) return e;
  const std::string rel = "test/golden/models/tiny-flat";
  auto exists = [](const std::string& d) { return access((d + "/model.safetensors").c_str(), R_OK) == 0; };
  if (exists(rel)) return rel;
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, size_t(n));
    for (int up = 0; up < 4; up++) {
      dir = dir.substr(0, dir.find_last_of('/'));
      if (exists(dir + "/" + rel)) return dir + "/" + rel;
    }
  }
  fail("tiny-flat checkpoint not found (set VREFLECT_TINY_FLAT to test/golden/models/tiny-flat)");
}

// Just enough JSON for a safetensors header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [a, b]}, ..}
class HeaderReader {
 public:
  explicit HeaderReader(std::string s) : s_(std::move(s)) {}
  std::vector<TensorRecord> records(const std::string& file, uint64_t data_start) {
    std::vector<TensorRecord> out;
    expect('{');
    while (!peek('}')) {
      const std::string name = str();
      expect(':');
      TensorRecord r;
      r.name = name;
      r.file = file;
      std::vector<int64_t> offs;
      bool is_tensor = false;
      expect('{');
      while (!peek('}')) {
        const std::string key = str();
        expect(':');
        if (key == "dtype") {
          VR_CHECK(dtype_from_name(str(), &r.dtype), "safetensors header: unsupported dtype of ", name);
          is_tensor = true;
        } else if (key == "shape") {
          r.shape = ints();
        } else if (key == "data_offsets") {
          offs = ints();
        } else {
          str();  // __metadata__ values are strings
        }
        if (peek(',')) expect(',');
      }
      expect('}');
      if (is_tensor) {
        VR_CHECK(offs.size() == 2, "safetensors header: bad data_offsets of ", name);
        r.offset = data_start + uint64_t(offs[0]);
        r.nbytes = uint64_t(offs[1] - offs[0]);
        out.push_back(r);
      }
      if (peek(',')) expect(',');
    }
    return out;
  }

 private:
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) i_++;
  }
  bool peek(char c) {
    ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  void expect(char c) {
    VR_CHECK(peek(c), "safetensors header: expected '", c, "' at byte ", i_);
    i_++;
  }
  std::string str() {
    expect('"');
    const size_t e = s_.find('"', i_);
    VR_CHECK(e != std::string::npos, "safetensors header: unterminated string");
    std::string r = s_.substr(i_, e - i_);
    i_ = e + 1;
    return r;
  }
  std::vector<int64_t> ints() {
    std::vector<int64_t> v;
    expect('[');
    while (!peek(']')) {
      size_t used = 0;
      v.push_back(std::stoll(s_.substr(i_, 32), &used));
      i_ += used;
      if (peek(',')) expect(',');
    }
    expect(']');
    return v;
  }
  std::string s_;
  size_t i_ = 0;
};

inline std::vector<TensorRecord> safetensors_records(const std::string& file) {
  FILE* f = std::fopen(file.c_str(), "rb");
  VR_CHECK(f, "cannot open ", file);
  uint64_t n = 0;
  std::string header;
  bool ok = std::fread(&n, 8, 1, f) == 1 && n < (uint64_t(1) << 26);
  if (ok) {
    header.resize(size_t(n));
    ok = std::fread(&header[0], 1, size_t(n), f) == size_t(n);
  }
  std::fclose(f);
  VR_CHECK(ok, file, ": not a safetensors file");
  return HeaderReader(header).records(file, 8 + n);
}

// tiny-flat's config.json, normalised as src/model/config.ts does.
inline ModelConfig tiny_flat_config(DType compute) {
  ModelConfig mc;
  TextConfig& t = mc.text;
  t.hidden = 64;
  t.layers = 3;
  t.heads = 4;
  t.kv_heads = 2;
  t.head_dim = 16;
  t.intermediate = 128;
  t.vocab = 416;
  t.eps = 1e-6f;
  t.rope_theta = 1e6f;
  t.mrope_section[0] = 2;
  t.mrope_section[1] = 3;
  t.mrope_section[2] = 3;
  t.tie_embeddings = false;
  VisionConfig& v = mc.vision;
  v.depth = 4;
  v.hidden = 32;
  v.heads = 2;
  v.intermediate = 48;
  v.out_hidden = 64;
  v.window_size = 112;
  v.fullatt_blocks = {1, 3};
  mc.image_token_id = 372;
  mc.vision_start_token_id = 369;
  mc.compute = compute;
  mc.validate();
  return mc;
}

}  // namespace vr::test
