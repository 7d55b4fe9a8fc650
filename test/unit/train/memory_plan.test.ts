import * as path from 'path';

import { openCheckpoint } from '../../../src/model/checkpoint';
import { loadModelConfig } from '../../../src/model/config';
import { enforceMemoryPlan, planTrainingMemory } from '../../../src/train/memory_plan';

const MODEL = path.join(__dirname, '..', '..', 'golden', 'models', 'tiny-flat');

describe('training memory plan', () => {
  const cfg = loadModelConfig(MODEL);
  const ck = openCheckpoint(MODEL, cfg);
  const opts = { dtype: 'fp32' as const, packing: true, perDeviceBatchSize: 1, imageMaxPixels: 4014080, stage: 1 as const };

  test('counts trainable parameters (LLM + a new BCM) at 16 bytes each, the ViT as frozen', () => {
    const p = planTrainingMemory(cfg, ck.tensors, opts);
    const vision = ck.tensors.filter((t) => t.name.startsWith('visual.')).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const all = ck.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const D = cfg.text.hidden;
    expect(p.frozenParams).toBe(vision);
    expect(p.trainableParams).toBe(all - vision + 4 * D * D + 14 * D);
    expect(p.optimizerBytes).toBe(16 * p.trainableParams);
    expect(() => enforceMemoryPlan(p)).not.toThrow();
  });

  test('a run that cannot fit is refused, naming the flag to change', () => {
    const p = planTrainingMemory(cfg, ck.tensors, opts);
    expect(() => enforceMemoryPlan({ ...p, availableBytes: p.optimizerBytes + p.frozenBytes + 1 })).toThrow(/--image-max-pixels/);
    expect(() => enforceMemoryPlan({ ...p, availableBytes: 1 })).toThrow(/trainable parameters alone/);
  });
});
