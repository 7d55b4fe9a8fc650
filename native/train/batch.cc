#include "train/batch.h"

#include <algorithm>

#include "core/error.h"

namespace vr {

namespace {
void check_cu(const std::vector<int32_t>& cu, int64_t end, const char* what) {
  VR_CHECK(!cu.empty() && cu.front() == 0 && cu.back() == end, "batch: ", what, " must run from 0 to ", end);
  for (size_t i = 0; i + 1 < cu.size(); i++)
    VR_CHECK(cu[i + 1] >= cu[i], "batch: ", what, " decreases at entry ", i);
}
}  // namespace

void validate_batch(const TrainBatch& b, const ModelConfig& cfg, int lvr_id) {
  const int64_t T = b.tokens(), V = cfg.text.vocab;
  VR_CHECK(T > 0, "batch: no tokens");
  VR_CHECK(b.cu_seqlens.size() >= 2, "batch: cuSeqlens needs at least 2 entries");
  check_cu(b.cu_seqlens, T, "cuSeqlens");
  const int n = b.samples();
  for (int s = 0; s < n; s++) VR_CHECK(b.cu_seqlens[s + 1] > b.cu_seqlens[s], "batch: sample ", s, " is empty");
  for (int64_t i = 0; i < T; i++)
    VR_CHECK(b.input_ids[i] >= 0 && b.input_ids[i] < V, "batch: token id ", b.input_ids[i], " at position ", i,
             " is outside the vocabulary [0, ", V, ")");
  VR_CHECK(int64_t(b.positions.size()) == 3 * T, "batch: positions has ", b.positions.size(), " entries, expected 3*T = ",
           3 * T);
  for (int32_t p : b.positions) VR_CHECK(p >= 0, "batch: negative M-RoPE position ", p);
  VR_CHECK(int64_t(b.targets.size()) == T, "batch: targets has ", b.targets.size(), " entries, expected ", T);
  int64_t nt = 0;
  for (int64_t i = 0; i < T; i++) {
    const int32_t t = b.targets[i];
    VR_CHECK(t == -100 || (t >= 0 && t < V), "batch: target ", t, " at position ", i, " is neither -100 nor a token id");
    if (t != -100) nt++;
  }
  VR_CHECK(nt == b.num_targets, "batch: numTargets is ", b.num_targets, " but targets holds ", nt);
  for (int s = 0; s < n; s++)
    VR_CHECK(b.targets[b.cu_seqlens[s + 1] - 1] == -100, "batch: the last token of sample ", s,
             " has a target (the CE shift must not cross samples)");

  // Images: grids, patches, visual rows, and the image pads they fill.
  const int64_t I = int64_t(b.grids.size());
  int64_t patches = 0;
  for (const ImageGrid& g : b.grids) {
    VR_CHECK(g.t >= 1 && g.h >= 2 && g.w >= 2 && g.h % cfg.vision.merge == 0 && g.w % cfg.vision.merge == 0,
             "batch: image grid [", g.t, ", ", g.h, ", ", g.w, "] is not a positive grid of merge-size multiples");
    patches += g.patches();
  }
  if (I > 0) {
    VR_CHECK(b.patch_dim == cfg.vision.patch_dim(), "batch: patchDim ", b.patch_dim, " != the model's ",
             cfg.vision.patch_dim());
  }
  VR_CHECK(int64_t(b.pixel_values.size()) == patches * (I ? b.patch_dim : 0), "batch: pixelValues has ",
           b.pixel_values.size(), " floats, the grids need ", patches, " x ", b.patch_dim);
  VR_CHECK(int64_t(b.cu_image_tokens.size()) == I + 1, "batch: cuImageTokens needs numImages+1 entries");
  int64_t vis = 0;
  for (int64_t i = 0; i < I; i++) {
    VR_CHECK(b.cu_image_tokens[i] == vis, "batch: cuImageTokens[", i, "] = ", b.cu_image_tokens[i], ", expected ", vis);
    vis += b.grids[i].tokens();
  }
  VR_CHECK(b.cu_image_tokens[I] == vis, "batch: cuImageTokens ends at ", b.cu_image_tokens[I], ", expected ", vis);
  VR_CHECK(int64_t(b.cu_sample_visual.size()) == n + 1, "batch: cuSampleVisual needs numSamples+1 entries");
  check_cu(b.cu_sample_visual, vis, "cuSampleVisual");
  for (int s = 0; s < n; s++) {
    int64_t pads = 0;
    for (int32_t i = b.cu_seqlens[s]; i < b.cu_seqlens[s + 1]; i++) pads += b.input_ids[i] == cfg.image_token_id;
    VR_CHECK(pads == b.cu_sample_visual[s + 1] - b.cu_sample_visual[s], "batch: sample ", s, " has ", pads,
             " image pads but ", b.cu_sample_visual[s + 1] - b.cu_sample_visual[s], " visual tokens");
  }

  // Boxes and latent slots.
  const int64_t B = b.boxes(), K = b.latent_count;
  VR_CHECK(K > 0 || B == 0, "batch: latentCount must be positive");
  VR_CHECK(int64_t(b.cu_box_tokens.size()) == B + 1, "batch: cuBoxTokens needs numBoxes+1 entries");
  check_cu(b.cu_box_tokens, int64_t(b.box_token_idx.size()), "cuBoxTokens");
  VR_CHECK(b.box_local_idx.size() == b.box_token_idx.size(), "batch: boxLocalIdx and boxTokenIdx differ in length");
  VR_CHECK(int64_t(b.lvr_slots.size()) == K * B, "batch: lvrSlots has ", b.lvr_slots.size(), " entries, expected ",
           K * B);
  std::vector<uint8_t> used(size_t(T), 0);
  for (int64_t bx = 0; bx < B; bx++) {
    const int32_t s = b.box_sample[bx];
    VR_CHECK(s >= 0 && s < n, "batch: box ", bx, " names sample ", s, " of ", n);
    VR_CHECK(bx == 0 || s >= b.box_sample[bx - 1], "batch: boxes are not in sample order");
    VR_CHECK(b.cu_box_tokens[bx + 1] > b.cu_box_tokens[bx], "batch: box ", bx, " has no visual tokens");
    const int32_t v0 = b.cu_sample_visual[s], v1 = b.cu_sample_visual[s + 1];
    for (int32_t j = b.cu_box_tokens[bx]; j < b.cu_box_tokens[bx + 1]; j++) {
      VR_CHECK(b.box_token_idx[j] >= v0 && b.box_token_idx[j] < v1, "batch: box ", bx, " token ", b.box_token_idx[j],
               " is outside its sample's visual rows [", v0, ", ", v1, ")");
      VR_CHECK(b.box_local_idx[j] + v0 == b.box_token_idx[j], "batch: box ", bx,
               " boxLocalIdx does not match boxTokenIdx");
    }
    for (int64_t k = 0; k < K; k++) {
      const int32_t p = b.lvr_slots[bx * K + k];
      VR_CHECK(p > b.cu_seqlens[s] && p < b.cu_seqlens[s + 1], "batch: <|lvr|> slot ", p, " of box ", bx,
               " is not inside sample ", s, " (after its first token)");
      VR_CHECK(!used[size_t(p)], "batch: <|lvr|> slot ", p, " is listed twice");
      used[size_t(p)] = 1;
      VR_CHECK(b.input_ids[p] != cfg.image_token_id, "batch: <|lvr|> slot ", p, " is an image pad");
      VR_CHECK(lvr_id < 0 || b.input_ids[p] == lvr_id, "batch: token ", p, " is listed as an <|lvr|> slot but holds id ",
               b.input_ids[p]);
    }
  }
  if (lvr_id >= 0) {
    const int64_t nlvr = std::count(b.input_ids.begin(), b.input_ids.end(), lvr_id);
    VR_CHECK(nlvr == K * B, "batch: ", nlvr, " <|lvr|> tokens but ", B, " boxes x ", K, " slots");
  }
}

}  // namespace vr
