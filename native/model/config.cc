#include "model/config.h"

#include "core/error.h"

namespace vr {

void ModelConfig::validate() const {
  const TextConfig& t = text;
  VR_CHECK(t.hidden > 0 && t.layers > 0 && t.heads > 0 && t.kv_heads > 0 && t.vocab > 0 && t.intermediate > 0,
           "config: text hidden/layers/heads/kv_heads/vocab/intermediate must be positive");
  VR_CHECK(t.heads % t.kv_heads == 0, "config: num_attention_heads (", t.heads,
           ") is not a multiple of num_key_value_heads (", t.kv_heads, ")");
  VR_CHECK(t.head_dim > 0 && t.head_dim % 2 == 0, "config: text head_dim must be even and positive");
  VR_CHECK(t.mrope_section[0] + t.mrope_section[1] + t.mrope_section[2] == t.head_dim / 2,
           "config: mrope_section [", t.mrope_section[0], ",", t.mrope_section[1], ",", t.mrope_section[2],
           "] must sum to head_dim/2 = ", t.head_dim / 2);
  const VisionConfig& v = vision;
  VR_CHECK(v.depth > 0 && v.hidden > 0 && v.heads > 0 && v.hidden % v.heads == 0,
           "config: vision depth/hidden/num_heads invalid");
  VR_CHECK(v.head_dim() % 4 == 0, "config: vision head_dim must be a multiple of 4 for 2-D RoPE");
  VR_CHECK(v.out_hidden == t.hidden, "config: vision out_hidden_size (", v.out_hidden,
           ") must equal the text hidden_size (", t.hidden, ")");
  VR_CHECK(v.merge == 2, "config: spatial_merge_size other than 2 is not supported");
  VR_CHECK(v.patch > 0 && v.temporal_patch > 0 && v.in_channels > 0, "config: vision patch sizes invalid");
  int ws = v.window_size / v.merge / v.patch;
  VR_CHECK(ws >= 1 && ws * v.merge * v.patch == v.window_size, "config: window_size ", v.window_size,
           " must be a multiple of patch_size*spatial_merge_size");
  for (int b : v.fullatt_blocks)
    VR_CHECK(b >= 0 && b < v.depth, "config: fullatt_block_indexes entry ", b, " out of range");
  VR_CHECK(image_token_id >= 0 && image_token_id < t.vocab, "config: image_token_id out of range");
  VR_CHECK(vision_start_token_id >= 0 && vision_start_token_id < t.vocab, "config: vision_start_token_id out of range");
  VR_CHECK(compute == DType::F32 || compute == DType::BF16, "config: compute dtype must be fp32 or bf16");
}

}  // namespace vr
