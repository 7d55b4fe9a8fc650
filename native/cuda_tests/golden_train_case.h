// The golden training cases of test/golden_train (cases.json: tiny-flat + heads_init.safetensors, the batches of
// each step's micro-batches, PyTorch's expected losses; expected.safetensors: its gradients and weights) as the
// CUDA trainer tests read them: a case by name, its TrainerConfig, a micro-batch as a TrainBatch.
#pragma once
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda_tests/json_value.h"
#include "cuda_tests/model_fixture.h"
#include "train/batch.h"
#include "train/trainer.h"

namespace vr::test {

constexpr int64_t kGoldenPatchDim = 1176;

inline std::string golden_train_dir() { return tiny_flat_dir() + "/../../../golden_train"; }

// cases.json's batch -> TrainBatch (src/data/batch.ts's layout; pixel values regenerated from the image seeds as
// make_golden_train.py makes them).
inline TrainBatch golden_train_batch(const Json& j) {
  TrainBatch b;
  b.input_ids = j["inputIds"].ints();
  b.cu_seqlens = j["cuSeqlens"].ints();
  b.positions = j["positions"].ints();
  b.targets = j["targets"].ints();
  b.num_targets = int64_t(j["numTargets"].number());
  b.patch_dim = int64_t(j["patchDim"].number());
  VR_CHECK(b.patch_dim == kGoldenPatchDim, "golden batch: patch dim ", b.patch_dim);
  const Json& images = j["images"];
  for (size_t i = 0; i < images.size(); i++) {
    const std::vector<int32_t> g = images[i]["grid"].ints();
    const int64_t seed = int64_t(images[i]["seed"].number());
    const ImageGrid grid{g[0], g[1], g[2]};
    b.grids.push_back(grid);
    for (int64_t p = 0; p < grid.patches(); p++)
      for (int64_t c = 0; c < kGoldenPatchDim; c++)
        b.pixel_values.push_back(float(double((p * 131 + c * 71 + seed * 977) % 1000) / 500.0 - 1.0));
  }
  b.cu_image_tokens = j["cuImageTokens"].ints();
  b.cu_sample_visual = j["cuSampleVisual"].ints();
  b.latent_count = int(j["latentCount"].number());
  b.box_token_idx = j["boxTokenIdx"].ints();
  b.box_local_idx = j["boxLocalIdx"].ints();
  b.cu_box_tokens = j["cuBoxTokens"].ints();
  b.box_sample = j["boxSample"].ints();
  b.lvr_slots = j["lvrSlots"].ints();
  return b;
}

struct GoldenCase {
  Json cases;
  Json c;  // the case
  std::string name;
  std::vector<TensorRecord> records;  // tiny-flat + heads_init
  std::map<std::string, TensorRecord> expected;
};

// The case `name` of cases.json, read once per process.
inline const GoldenCase& golden_case(const std::string& name) {
  static std::map<std::string, GoldenCase> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  GoldenCase g;
  g.cases = Json::parse_file(golden_train_dir() + "/cases.json");
  const Json& cs = g.cases["cases"];
  for (size_t i = 0; i < cs.size(); i++)
    if (cs[i]["case"].str == name) g.c = cs[i];
  VR_CHECK(g.c.kind == Json::Obj, "cases.json: no ", name, " case");
  g.name = name;
  g.records = safetensors_records(tiny_flat_dir() + "/model.safetensors");
  for (const TensorRecord& r : safetensors_records(golden_train_dir() + "/heads_init.safetensors"))
    g.records.push_back(r);
  for (const TensorRecord& r : safetensors_records(golden_train_dir() + "/expected.safetensors"))
    g.expected[r.name] = r;
  return cache.emplace(name, std::move(g)).first->second;
}

// The case's trainer settings (stage, loss weights, AdamW, the <|lvr|> id check).
inline TrainerConfig golden_trainer_config(const GoldenCase& g) {
  TrainerConfig tc;
  tc.stage = int(g.c["stage"].number());
  tc.latent_count = 8;
  tc.lambda_resampler = g.c["lambdaResampler"].number();
  tc.lambda_attn = g.c["lambdaAttn"].number();
  const Json& a = g.c["adamw"];
  tc.adamw.beta1 = a["beta1"].number();
  tc.adamw.beta2 = a["beta2"].number();
  tc.adamw.eps = a["eps"].number();
  tc.adamw.weight_decay = a["weightDecay"].number();
  tc.lvr_id = int(g.cases["token_ids"]["lvr"].number());
  return tc;
}

// Micro-batch m of step k of the case.
inline TrainBatch golden_micro_batch(const GoldenCase& g, size_t k, size_t m) {
  return golden_train_batch(g.c["steps"][k]["micro"][m]["batch"]);
}

}  // namespace vr::test
