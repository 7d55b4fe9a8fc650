#include "train/state_io.h"

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/error.h"

namespace vr {

namespace {

struct Entry {
  std::string name;
  const Param* p;
  StateField field;
};

std::vector<Entry> entries(const ParamStore& ps) {
  std::vector<Entry> e;
  for (auto& p : ps.all()) {
    e.push_back({p->name, p.get(), StateField::Weights});
    if (p->trainable) {
      e.push_back({p->name + ".exp_avg", p.get(), StateField::ExpAvg});
      e.push_back({p->name + ".exp_avg_sq", p.get(), StateField::ExpAvgSq});
    }
  }
  return e;
}

float* host_array(const Param& p, StateField f) {
  float* a = f == StateField::Weights ? p.w : f == StateField::ExpAvg ? p.m : p.v;
  VR_CHECK(a, "trainer state: ", p.name, " has no host ", f == StateField::Weights ? "weights" : "AdamW moments",
           " (this parameter store keeps them elsewhere)");
  return a;
}

constexpr int64_t kPiece = int64_t(1) << 24;  // values per read while writing: 64 MiB of fp32

std::string json_shape(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

struct File {
  FILE* f;
  explicit File(const std::string& p) : f(std::fopen(p.c_str(), "wb")) {}
  ~File() {
    if (f) std::fclose(f);
  }
};

}  // namespace

StateSource host_state_source() {
  return [](const Param& p, StateField f, int64_t off, int64_t n, float* dst) {
    std::memcpy(dst, host_array(p, f) + off, size_t(n) * sizeof(float));
  };
}

StateSink host_state_sink() {
  return [](const Param& p, StateField f, const float* src) {
    std::memcpy(host_array(p, f), src, size_t(p.numel) * sizeof(float));
  };
}

void save_trainer_state(const Trainer& t, const std::string& path) {
  save_param_state(t.params(), t.step(), t.config().stage, path);
}

void save_param_state(const ParamStore& ps, int64_t step, int stage, const std::string& path, const StateSource& read) {
  const std::vector<Entry> es = entries(ps);
  std::string h = "{\"__metadata__\":{\"format\":\"vreflect-trainer-state\",\"step\":\"" + std::to_string(step) +
                  "\",\"stage\":\"" + std::to_string(stage) + "\"}";
  uint64_t off = 0;
  for (const Entry& e : es) {
    const uint64_t nb = uint64_t(e.p->numel) * 4;
    h += ",\"" + e.name + "\":{\"dtype\":\"F32\",\"shape\":" + json_shape(e.p->shape) + ",\"data_offsets\":[" +
         std::to_string(off) + "," + std::to_string(off + nb) + "]}";
    off += nb;
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  const std::string tmp = path + ".tmp";
  {
    File f(tmp);
    VR_CHECK(f.f, "cannot write trainer state ", tmp);
    uint8_t len[8];
    uint64_t n = h.size();
    for (int i = 0; i < 8; i++) len[i] = uint8_t(n >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f.f) == 8 && std::fwrite(h.data(), 1, h.size(), f.f) == h.size();
    std::vector<float> piece;
    try {
      for (const Entry& e : es)
        for (int64_t o = 0; ok && o < e.p->numel; o += kPiece) {
          const int64_t n = std::min(kPiece, e.p->numel - o);
          piece.resize(size_t(n));
          read(*e.p, e.field, o, n, piece.data());
          ok = std::fwrite(piece.data(), 4, size_t(n), f.f) == size_t(n);
        }
    } catch (...) {
      std::fclose(f.f);
      f.f = nullptr;
      std::remove(tmp.c_str());
      throw;
    }
    ok = ok && std::fflush(f.f) == 0;
    if (!ok) {
      std::remove(tmp.c_str());
      fail("writing trainer state ", tmp, " failed (disk full?)");
    }
  }
  VR_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path);
}

void load_trainer_state(Trainer& t, const std::vector<TensorRecord>& records, int64_t step) {
  load_param_state(t.params(), records, step);
  t.set_step(step);
  t.params().zero_grad();
  t.weights_changed();
}

void load_param_state(const ParamStore& ps, const std::vector<TensorRecord>& records, int64_t step,
                      const StateSink& write) {
  VR_CHECK(step >= 0, "trainer state: negative step ", step);
  const WeightStore ws(records);
  const std::vector<Entry> es = entries(ps);
  std::set<std::string> known;
  for (const Entry& e : es) known.insert(e.name);
  for (const TensorRecord& r : records)
    VR_CHECK(known.count(r.name), "trainer state: tensor ", r.name, " does not belong to this trainer (other stage?)");
  for (const Entry& e : es) {
    const TensorView& v = ws.get(e.name, e.p->shape);
    VR_CHECK(v.dtype == DType::F32, "trainer state: tensor ", e.name, " must be F32");
    write(*e.p, e.field, static_cast<const float*>(v.data));
  }
}

}  // namespace vr
