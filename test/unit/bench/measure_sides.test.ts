// Both measuring sides run the golden case flat_plain_odd_rep105 (tiny-flat, odd_97x61.png, repetition penalty
// 1.05 from generation_config, eos <|im_end|>): the prompt length, image grid and the number of generated tokens
// (5, stopped by eos) must be those transformers recorded in test/golden/cases. Our side needs the built addon
// (like test/golden/parity.test.ts); the PyTorch side runs only when VREFLECT_PYTHON names a Python with torch.
import * as fs from 'fs';
import * as path from 'path';

import { measureOurs } from '../../../src/bench/ours_worker';
import { findTorchPython, runTorchInfer } from '../../../src/bench/torch_side';

const GOLDEN = path.join(__dirname, '..', '..', 'golden');
const c = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases', 'flat_plain_odd_rep105.json'), 'utf8'));
const req = {
  model: path.join(GOLDEN, c.model_dir),
  image: path.join(GOLDEN, c.image),
  prompt: c.prompt,
  threads: 1,
  newTokens: c.max_new_tokens - 1,
  repeats: 1,
  warmup: 0,
};

test('our side: golden prompt length, grid and eos stop', async () => {
  const r = await measureOurs({ ...req, dtype: 'fp32' });
  expect(r.prompt_tokens).toBe(c.prompt_length);
  expect(r.image_grid_thw).toEqual(c.image_grid_thw);
  expect(r.runs.map((x) => x.generated)).toEqual([c.generated_ids.length]);
  expect(r.stop_reasons).toEqual([c.stop_reason]);
  expect(r.runs[0].prefill_ms).toBeGreaterThan(0);
  expect(r.peak_rss_bytes).toBeGreaterThanOrEqual(r.rss_after_load_bytes);
});

const py = process.env.VREFLECT_PYTHON ? findTorchPython(process.env.VREFLECT_PYTHON) : undefined;
(py?.available ? test : test.skip)('PyTorch side (VREFLECT_PYTHON): same prompt, grid and token count', async () => {
  const r = await runTorchInfer(py!, { ...req, dtype: 'fp32' });
  expect(r.prompt_tokens).toBe(c.prompt_length);
  expect(r.image_grid_thw).toEqual(c.image_grid_thw);
  expect(r.runs.map((x) => x.generated)).toEqual([c.generated_ids.length]);
  expect(r.attn).toBe('sdpa');
  expect(r.peak_rss_bytes).toBeGreaterThan(0);
}, 120_000);
