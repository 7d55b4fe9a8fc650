#include "train/state_io.h"

#include <cstdio>
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
  const float* data;
};

std::vector<Entry> entries(const ParamStore& ps) {
  std::vector<Entry> e;
  for (auto& p : ps.all()) {
    e.push_back({p->name, p.get(), p->w});
    if (p->trainable) {
      e.push_back({p->name + ".exp_avg", p.get(), p->m});
      e.push_back({p->name + ".exp_avg_sq", p.get(), p->v});
    }
  }
  return e;
}

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

void save_trainer_state(const Trainer& t, const std::string& path) {
  save_param_state(t.params(), t.step(), t.config().stage, path);
}

void save_param_state(const ParamStore& ps, int64_t step, int stage, const std::string& path) {
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
    for (const Entry& e : es)
      ok = ok && std::fwrite(e.data, 4, size_t(e.p->numel), f.f) == size_t(e.p->numel);
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

void load_param_state(ParamStore& ps, const std::vector<TensorRecord>& records, int64_t step) {
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
    std::memcpy(const_cast<float*>(e.data), v.data, size_t(e.p->numel) * 4);
  }
}

}  // namespace vr
