// The V-Reflection decoding rules (method.md §12.3) as one state machine, shared by the CPU Session
// (model/qwen_vl) and the CUDA one (cuda/model/gpu_session), so both devices obey one rule. The device part of a
// step (the forward, the penalised argmax) stays with each session; this class decides what the chosen id means:
//   - latent mode starts when the token just fed is <|lvr_start|> (the prompt's last token at prefill too);
//   - in latent mode the next forward is fed the last post-norm hidden state instead of an embedding, for
//     `latent_steps` forwards (the quota);
//   - eos and max_new_tokens do not count while latent mode is on; the ids chosen in latent mode are appended
//     all the same (and so enter the repetition penalty).
#pragma once
#include <cstdint>
#include <vector>

#include "model/qwen_vl.h"

namespace vr {

class DecodeRules {
 public:
  enum class Next { embed_token, feed_hidden, stop };
  // `seq` is the prompt's ids; each accepted id is appended to it (the caller's repetition-penalty view).
  DecodeRules(const GenerateOptions& opt, std::vector<int32_t>& seq);
  // Takes the id chosen from the last forward's logits: records it in r (ids, latent_input, stop_reason) and
  // says what the next forward is fed - the id's embedding, the last hidden state, or nothing (stop).
  Next accept(int32_t id, GenerateResult& r);

 private:
  const GenerateOptions& opt_;
  std::vector<int32_t>& seq_;
  bool mode_ = false;
  int remaining_ = 0;
  bool fed_hidden_ = false;  // whether the forward that produced the id being accepted was fed a hidden state
};

// Checks GenerateOptions the same way for both sessions (one-line vr::Error).
void check_generate_options(const GenerateOptions& opt);

}  // namespace vr
