import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { latestCheckpoint, rotateCheckpoints } from '../../../src/train/checkpoint_rotation';
import { MetricsLog } from '../../../src/train/metrics_log';
import { learningRate, warmupSteps } from '../../../src/train/schedule';

describe('learning-rate schedule (HF cosine / constant with warmup)', () => {
  test('upstream stage 1: 2500 steps, ratio 0.03 -> 75 warmup steps', () => {
    const s = { kind: 'cosine' as const, peakLr: 1e-5, maxSteps: 2500, warmupRatio: 0.03 };
    expect(warmupSteps(s)).toBe(75);
    expect(learningRate(s, 0)).toBe(0);
    expect(learningRate(s, 1)).toBeCloseTo(1e-5 / 75, 20);
    expect(learningRate(s, 75)).toBeCloseTo(1e-5, 20);
    expect(learningRate(s, 2500)).toBeCloseTo(0, 20);
  });
  test('cosine midpoint and constant', () => {
    const c = { kind: 'cosine' as const, peakLr: 2, maxSteps: 10, warmupRatio: 0.2 };
    expect(learningRate(c, 1)).toBeCloseTo(1, 12);
    expect(learningRate(c, 6)).toBeCloseTo(1, 12); // progress 4/8 -> 0.5 * peak
    expect(learningRate(c, 4)).toBeCloseTo(2 * 0.5 * (1 + Math.cos(Math.PI * 0.25)), 12);
    const k = { kind: 'constant' as const, peakLr: 2, maxSteps: 10, warmupRatio: 0.2 };
    expect(learningRate(k, 1)).toBeCloseTo(1, 12);
    expect(learningRate(k, 9)).toBe(2);
  });
});

describe('checkpoint rotation and metrics log', () => {
  test('keeps the newest N checkpoints; latest needs trainer_state.json', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-rot-'));
    for (const s of [5, 10, 15, 20]) {
      fs.mkdirSync(path.join(dir, `checkpoint-${s}`));
      if (s !== 20) fs.writeFileSync(path.join(dir, `checkpoint-${s}`, 'trainer_state.json'), '{}');
    }
    expect(rotateCheckpoints(dir, 3).map((d) => path.basename(d))).toEqual(['checkpoint-5']);
    expect(latestCheckpoint(dir)).toBe(path.join(dir, 'checkpoint-15')); // 20 is incomplete
  });
  test('resume drops lines after the resumed step and a torn line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-met-'));
    const file = path.join(dir, 'metrics.jsonl');
    const log = new MetricsLog(file);
    for (let s = 1; s <= 4; s++) log.write({ step: s, loss: s });
    log.close();
    fs.appendFileSync(file, '{"step": 5, "lo');
    const resumed = new MetricsLog(file, 2);
    resumed.write({ step: 3, loss: 30 });
    resumed.close();
    const steps = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(steps).toEqual([{ step: 1, loss: 1 }, { step: 2, loss: 2 }, { step: 3, loss: 30 }]);
  });
});
