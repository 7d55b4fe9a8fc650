// Canonical (legacy, on-disk) tensor names of Qwen2.5-VL and the shapes the config implies (model.md §2.2-2.3).
import { ModelConfig } from './config';

/**
 * Maps the in-memory spelling of transformers >= 4.52 / 5.x to the legacy on-disk one:
 * `model.language_model.X` -> `model.X`, `model.visual.X` -> `visual.X`. Other names are returned unchanged.
 */
export function canonicalTensorName(name: string): string {
  if (name.startsWith('model.language_model.')) return 'model.' + name.slice('model.language_model.'.length);
  if (name.startsWith('model.visual.')) return name.slice('model.'.length);
  return name;
}

/** Every tensor the inference engine needs, by canonical name, with its expected shape. */
export function expectedTensorShapes(cfg: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const v = cfg.vision;
  const D = v.hidden, I = v.intermediate, merged = D * v.merge * v.merge;
  m.set('visual.patch_embed.proj.weight', [D, v.inChannels, v.temporalPatch, v.patch, v.patch]);
  for (let i = 0; i < v.depth; i++) {
    const p = `visual.blocks.${i}.`;
    m.set(p + 'norm1.weight', [D]);
    m.set(p + 'norm2.weight', [D]);
    m.set(p + 'attn.qkv.weight', [3 * D, D]);
    m.set(p + 'attn.qkv.bias', [3 * D]);
    m.set(p + 'attn.proj.weight', [D, D]);
    m.set(p + 'attn.proj.bias', [D]);
    m.set(p + 'mlp.gate_proj.weight', [I, D]);
    m.set(p + 'mlp.gate_proj.bias', [I]);
    m.set(p + 'mlp.up_proj.weight', [I, D]);
    m.set(p + 'mlp.up_proj.bias', [I]);
    m.set(p + 'mlp.down_proj.weight', [D, I]);
    m.set(p + 'mlp.down_proj.bias', [D]);
  }
  m.set('visual.merger.ln_q.weight', [D]);
  m.set('visual.merger.mlp.0.weight', [merged, merged]);
  m.set('visual.merger.mlp.0.bias', [merged]);
  m.set('visual.merger.mlp.2.weight', [v.outHidden, merged]);
  m.set('visual.merger.mlp.2.bias', [v.outHidden]);

  const t = cfg.text;
  const H = t.hidden, q = t.heads * t.headDim, kv = t.kvHeads * t.headDim;
  m.set('model.embed_tokens.weight', [t.vocab, H]);
  for (let i = 0; i < t.layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(p + 'input_layernorm.weight', [H]);
    m.set(p + 'post_attention_layernorm.weight', [H]);
    m.set(p + 'self_attn.q_proj.weight', [q, H]);
    m.set(p + 'self_attn.q_proj.bias', [q]);
    m.set(p + 'self_attn.k_proj.weight', [kv, H]);
    m.set(p + 'self_attn.k_proj.bias', [kv]);
    m.set(p + 'self_attn.v_proj.weight', [kv, H]);
    m.set(p + 'self_attn.v_proj.bias', [kv]);
    m.set(p + 'self_attn.o_proj.weight', [H, q]);
    m.set(p + 'mlp.gate_proj.weight', [t.intermediate, H]);
    m.set(p + 'mlp.up_proj.weight', [t.intermediate, H]);
    m.set(p + 'mlp.down_proj.weight', [H, t.intermediate]);
  }
  m.set('model.norm.weight', [H]);
  if (!cfg.text.tieEmbeddings) m.set('lm_head.weight', [t.vocab, H]);
  return m;
}

/** Prefixes of V-Reflection's own modules (BCM / DAC, method.md §6): allowed, listed, not needed for inference. */
export const LVR_MODULE_PREFIXES = ['box_feature_resampler.', 'student_resampler.'];
