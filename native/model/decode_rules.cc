#include "model/decode_rules.h"

#include "core/error.h"

namespace vr {

void check_generate_options(const GenerateOptions& opt) {
  VR_CHECK(opt.max_new_tokens >= 1, "generate: max_new_tokens must be >= 1");
  VR_CHECK(opt.latent_steps >= 0, "generate: latent_steps must be >= 0");
  VR_CHECK(opt.repetition_penalty > 0, "generate: repetition_penalty must be > 0");
}

DecodeRules::DecodeRules(const GenerateOptions& opt, std::vector<int32_t>& seq) : opt_(opt), seq_(seq) {
  VR_CHECK(!seq_.empty(), "generate: empty prompt");
}

DecodeRules::Next DecodeRules::accept(int32_t id, GenerateResult& r) {
  // "start" looks at the token just fed (the prompt's last token at prefill); the quota counts forwards that
  // take a hidden state as input.
  const bool start = opt_.lvr_start_id >= 0 && seq_.back() == opt_.lvr_start_id;
  const bool now = mode_ || start;
  if (!mode_ && now) remaining_ = opt_.latent_steps;
  if (mode_) remaining_ -= 1;
  mode_ = now && remaining_ > 0;

  seq_.push_back(id);
  r.ids.push_back(id);
  r.latent_input.push_back(fed_hidden_ ? 1 : 0);

  // Stop only outside latent mode: eos, or the token limit.
  if (!mode_) {
    for (int e : opt_.eos_ids)
      if (e == id) {
        r.stop_reason = "eos";
        return Next::stop;
      }
    if (int(r.ids.size()) >= opt_.max_new_tokens) {
      r.stop_reason = "max_new_tokens";
      return Next::stop;
    }
  }
  fed_hidden_ = mode_;
  if (mode_) r.latent_steps_run++;
  return mode_ ? Next::feed_hidden : Next::embed_token;
}

}  // namespace vr
