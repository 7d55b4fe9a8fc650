// Writes an HF-compatible checkpoint folder (loadable by transformers and by `vreflect infer`): the weights with
// upstream's tensor names (incl. box_feature_resampler.* / student_resampler.*), config.json with the lvr
// fields, tokenizer and processor files, generation_config.json — plus, for checkpoint-N folders, what --resume
// needs (trainer_state.json and the optimizer state). Written into "<dir>.tmp" and renamed: a crash never leaves
// a half-written folder under the final name.
import * as fs from 'fs';
import * as path from 'path';

import type { ModelConfig } from '../model/config';
import type { NativeTrainer } from '../native/trainer';

/** Files copied unchanged from the source checkpoint when present. */
const COPIED = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'chat_template.json',
  'chat_template.jinja',
  'generation_config.json',
];

export interface CheckpointMeta {
  stage: 1 | 2;
  latentCount: number;
  lambdaResampler: number;
  lambdaAttn: number;
  ids: { lvrStart: number; lvr: number; lvrLatentEnd: number; lvrEnd: number };
  imageMinPixels: number;
  imageMaxPixels: number;
}

/** config.json: the source's, plus the V-Reflection fields upstream's checkpoints carry (method.md §8.4). */
export function checkpointConfig(src: ModelConfig, meta: CheckpointMeta, final: boolean): Record<string, unknown> {
  const raw = JSON.parse(JSON.stringify(src.raw)) as Record<string, unknown>;
  Object.assign(raw, {
    use_box_feature_resampler: true,
    use_stage2_distillation: meta.stage === 2,
    num_latent_tokens: meta.latentCount,
    lvr_start_id: meta.ids.lvrStart,
    lvr_id: meta.ids.lvr,
    lvr_latent_end_id: meta.ids.lvrLatentEnd,
    lvr_end_id: meta.ids.lvrEnd,
    lvr_head: false,
    latent_end_token: false,
    loss_lvr_fct: 'mse',
    loss_lvr_resampler_lambda: meta.lambdaResampler,
    loss_attn_transfer_lambda: meta.lambdaAttn,
    use_cache: final,
  });
  if (src.layout === 'flat') raw.torch_dtype = 'bfloat16';
  else raw.dtype = 'bfloat16';
  return raw;
}

/** preprocessor_config.json with the training pixel limits, as upstream's saved processor has them. */
function preprocessorConfig(srcDir: string, meta: CheckpointMeta): Record<string, unknown> {
  const file = path.join(srcDir, 'preprocessor_config.json');
  const j = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  j.min_pixels = meta.imageMinPixels;
  j.max_pixels = meta.imageMaxPixels;
  if (j.size && typeof j.size === 'object') j.size = { shortest_edge: meta.imageMinPixels, longest_edge: meta.imageMaxPixels };
  return j;
}

export interface SaveRequest {
  dir: string; // final folder
  srcDir: string; // where tokenizer/processor files come from
  src: ModelConfig;
  meta: CheckpointMeta;
  trainer: NativeTrainer;
  weightsDtype: 'bf16' | 'fp32';
  /** for checkpoint-N folders: what --resume needs; omitted for the final model */
  resume?: { state: Record<string, unknown> };
}

export async function saveCheckpoint(req: SaveRequest): Promise<void> {
  const tmp = `${req.dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  await req.trainer.saveWeights(path.join(tmp, 'model.safetensors'), req.weightsDtype);
  const write = (name: string, obj: unknown) => fs.writeFileSync(path.join(tmp, name), JSON.stringify(obj, null, 2) + '\n');
  write('config.json', checkpointConfig(req.src, req.meta, !req.resume));
  write('preprocessor_config.json', preprocessorConfig(req.srcDir, req.meta));
  for (const f of COPIED) {
    const p = path.join(req.srcDir, f);
    if (fs.existsSync(p)) fs.copyFileSync(p, path.join(tmp, f));
  }
  if (req.resume) {
    await req.trainer.saveState(path.join(tmp, 'optimizer_state.safetensors'));
    write('trainer_state.json', req.resume.state); // written last: its presence marks a complete checkpoint
  }
  if (!req.resume) {
    // The final model goes into the output folder itself (beside metrics.jsonl and checkpoint-N): each file is
    // renamed into place, config.json last, so a reader never sees new weights under an old config.
    fs.mkdirSync(req.dir, { recursive: true });
    const names = fs.readdirSync(tmp).sort((a, b) => (a === 'config.json' ? 1 : b === 'config.json' ? -1 : a.localeCompare(b)));
    for (const f of names) fs.renameSync(path.join(tmp, f), path.join(req.dir, f));
    fs.rmSync(tmp, { recursive: true, force: true });
    return;
  }
  // checkpoint-N: the folder name appears only once every file is in place.
  if (fs.existsSync(req.dir)) fs.rmSync(req.dir, { recursive: true, force: true });
  fs.renameSync(tmp, req.dir);
}
