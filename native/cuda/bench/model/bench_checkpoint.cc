#include "cuda/bench/model/bench_checkpoint.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace vr::bench {
namespace {

constexpr int kVersion = 1;
constexpr const char* kMarker = "bench_checkpoint.json";
constexpr size_t kPool = size_t(1) << 22;  // values in the random pool
constexpr size_t kSlice = 4096;            // values copied per random offset

uint16_t bf16_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);  // round to nearest even (values are finite)
}

}  // namespace

void make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    mkdir(cur.c_str(), 0755);
  }
  struct stat st {};
  VR_CHECK(stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode), "cannot create the checkpoint directory ", dir);
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  VR_CHECK(f, "cannot write ", path);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  VR_CHECK(std::fclose(f) == 0 && ok, "cannot write ", path, " (disk full?)");
}

std::string marker_json(const BenchShape& s, uint64_t seed, uint64_t bytes) {
  return "{\"version\":" + std::to_string(kVersion) + ",\"shape\":" + s.json() + ",\"seed\":" + std::to_string(seed) +
         ",\"bytes\":" + std::to_string(bytes) + "}\n";
}

// The safetensors header (padded with spaces to a multiple of 8) and each tensor's offset in the data section.
std::string header_json(const std::vector<TensorSpec>& specs, std::vector<uint64_t>& offsets, uint64_t& data_bytes) {
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t off = 0;
  offsets.clear();
  for (const TensorSpec& t : specs) {
    std::string dims;
    for (int64_t d : t.shape) dims += (dims.empty() ? "" : ",") + std::to_string(d);
    const uint64_t n = uint64_t(t.numel()) * 2;
    h += ",\"" + t.name + "\":{\"dtype\":\"BF16\",\"shape\":[" + dims + "],\"data_offsets\":[" + std::to_string(off) +
         "," + std::to_string(off + n) + "]}";
    offsets.push_back(off);
    off += n;
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  data_bytes = off;
  return h;
}

}  // namespace

namespace {

// The records of `specs` laid out by header_json in `file`.
std::vector<TensorRecord> records_of(const std::string& file, const std::vector<TensorSpec>& specs,
                                     const std::string& header, const std::vector<uint64_t>& offsets) {
  std::vector<TensorRecord> out;
  for (size_t i = 0; i < specs.size(); i++) {
    TensorRecord r;
    r.name = specs[i].name, r.file = file, r.offset = 8 + header.size() + offsets[i];
    r.nbytes = uint64_t(specs[i].numel()) * 2, r.dtype = DType::BF16, r.shape = specs[i].shape;
    out.push_back(std::move(r));
  }
  return out;
}

// Writes `specs` as random bf16 (seeded) into one safetensors file with this header.
void write_random_safetensors(const std::string& file, const std::vector<TensorSpec>& specs,
                              const std::string& header, uint64_t seed, uint64_t total) {
  Rng64 rng(seed);
  std::vector<uint16_t> pool(kPool);
  for (size_t i = 0; i < kPool; i += 2) {  // Box-Muller: two N(0, 1) per pair of uniforms, scaled to std 0.02
    const double r = std::sqrt(-2.0 * std::log(std::max(rng.uniform(), 1e-12))), a = 2 * M_PI * rng.uniform();
    pool[i] = bf16_bits(float(0.02 * r * std::cos(a)));
    pool[i + 1] = bf16_bits(float(0.02 * r * std::sin(a)));
  }
  FILE* f = std::fopen(file.c_str(), "wb");
  VR_CHECK(f, "cannot write ", file);
  bool ok = true;
  const uint64_t hlen = header.size();
  ok = ok && std::fwrite(&hlen, 8, 1, f) == 1 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  std::vector<uint16_t> buf(size_t(1) << 24);  // 32 MiB per write
  for (const TensorSpec& t : specs) {
    for (int64_t done = 0, n = t.numel(); ok && done < n;) {
      const size_t chunk = size_t(std::min<int64_t>(int64_t(buf.size()), n - done));
      if (t.init == TensorInit::Ones) {
        std::fill(buf.begin(), buf.begin() + chunk, uint16_t(0x3f80));
      } else {
        for (size_t o = 0; o < chunk; o += kSlice) {
          const size_t m = std::min(kSlice, chunk - o);
          std::memcpy(&buf[o], &pool[size_t(rng.below(int64_t(kPool - kSlice)))], m * 2);
        }
      }
      ok = std::fwrite(buf.data(), 2, chunk, f) == chunk;
      done += int64_t(chunk);
    }
  }
  ok = std::fclose(f) == 0 && ok;
  VR_CHECK(ok, "cannot write ", file, " (", total, " bytes: disk full?)");
}

}  // namespace

BenchCheckpoint ensure_checkpoint(const BenchShape& s, uint64_t seed, const std::string& dir) {
  make_dirs(dir);
  const std::vector<TensorSpec> specs = tensor_specs(s);
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  const std::string header = header_json(specs, offsets, data_bytes);
  const uint64_t total = 8 + header.size() + data_bytes;
  BenchCheckpoint ck;
  ck.dir = dir;
  ck.bytes = total;
  const std::string file = dir + "/model.safetensors", marker = dir + "/" + kMarker;
  ck.records = records_of(file, specs, header, offsets);
  struct stat st {};
  if (read_file(marker) == marker_json(s, seed, total) && stat(file.c_str(), &st) == 0 && uint64_t(st.st_size) == total)
    return ck;

  const auto t0 = std::chrono::steady_clock::now();
  std::remove(marker.c_str());  // from here on an interrupted run leaves nothing that looks complete
  write_text(dir + "/config.json", config_json(s));
  write_random_safetensors(file, specs, header, seed, total);
  write_text(marker, marker_json(s, seed, total));
  ck.generated = true;
  ck.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ck;
}

std::vector<TensorRecord> write_bcm_head(const BenchShape& s, int latent_count, uint64_t seed, const std::string& dir) {
  make_dirs(dir);
  const std::vector<TensorSpec> specs = bcm_specs(s, latent_count);
  std::vector<uint64_t> offsets;
  uint64_t data_bytes = 0;
  const std::string header = header_json(specs, offsets, data_bytes);
  const std::string file = dir + "/bcm_head.safetensors";
  write_random_safetensors(file, specs, header, seed, 8 + header.size() + data_bytes);
  return records_of(file, specs, header, offsets);
}

}  // namespace vr::bench
