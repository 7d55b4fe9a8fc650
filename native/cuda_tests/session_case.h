// The tiny-flat conversation the CUDA session tests decode (test_model_session.cc, test_model_graphs.cc): an image
// of 4 x 6 merged tokens (2 windows) in a prompt that ends in <|lvr_start|>, with pixels from seed 13 - a seed whose
// generation emits <|lvr_start|> again (two latent phases) and whose step logits leave the bf16 rule room (GPU
// error 0.069 against a bound of 0.19 under the emulator). `latent` false: the prompt ends in a newline instead and
// the options decode 8 plain tokens.
#pragma once
#include <cstdint>

#include "model/config.h"
#include "model/qwen_vl.h"
#include "tests/harness.h"

namespace vr::test {

constexpr int32_t kImagePad = 372, kVisionStart = 369, kVisionEnd = 370, kLvrStart = 374, kImEnd = 362;

inline PrefillInput session_case_input(const ModelConfig& mc, bool latent = true) {
  PrefillInput in;
  in.grids = {ImageGrid{1, 8, 12}};  // 4 x 6 merged tokens, 2 windows
  in.ids = {361, 82, 327, 83, 198, kVisionStart};
  in.ids.insert(in.ids.end(), size_t(in.grids[0].tokens()), kImagePad);
  for (int32_t t : {kVisionEnd, 49, 68, 341, 259, 198, 361, 64, 291, 313, 198, kLvrStart}) in.ids.push_back(t);
  if (!latent) in.ids.back() = 198;
  Rng rng(13);
  in.pixel_values = rng.vec(size_t(in.grids[0].patches() * mc.vision.patch_dim()), -1.8, 2.1);
  return in;
}

// Greedy with the repetition penalty, every step's raw logits kept; latent: 4 latent steps per <|lvr_start|>, stop
// at <|im_end|> or 6 tokens, the latent steps' attention captured; else 8 tokens, no stop id.
inline GenerateOptions session_case_options(bool latent = true) {
  GenerateOptions o;
  o.keep_step_logits = true;
  o.repetition_penalty = 1.05f;
  if (!latent) {
    o.max_new_tokens = 8;
    return o;
  }
  o.max_new_tokens = 6;
  o.latent_steps = 4;
  o.eos_ids = {kImEnd};
  o.lvr_start_id = kLvrStart;
  o.capture_attention = true;
  return o;
}

}  // namespace vr::test
