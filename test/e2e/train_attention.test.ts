// train-stage1 / train-stage2 --attention-maps DIR on the tiny golden checkpoint and the data fixtures: PNGs at
// step 1 and every N-th step, stage 2 with a teacher and a student row, stage 1 with the teacher row alone.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

const ROOT = path.resolve(__dirname, '..', '..');
// VREFLECT_BIN: a CLI compiled elsewhere (parallel dev builds); the package's bin otherwise.
const BIN = process.env.VREFLECT_BIN ?? path.join(ROOT, 'bin', 'vreflect.js');
const MODEL = path.join(ROOT, 'test', 'golden', 'models', 'tiny-flat');
const META = path.join(ROOT, 'test', 'fixtures', 'data', 'meta.json');
const COMMON = ['--data-path', META, '--image-min-pixels', '3136', '--image-max-pixels', '50176', '--dtype', 'fp32', '--learning-rate', '1e-3',
  '--gradient-accumulation-steps', '1', '--save-steps', '0', '--log-level', 'warn'];
const GAP = 6, K = 8;

function vreflect(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300000, env: { ...process.env, VREFLECT_LOG_JSON: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Panel width and height of a picture with 9 columns and `rows` rows; the longer side of a panel is 160 px.
async function panels(file: string, rows: number): Promise<[number, number]> {
  const m = await sharp(file).metadata();
  expect(m.format).toBe('png');
  const pw = (m.width! - (K + 2) * GAP) / (K + 1), ph = (m.height! - (rows + 1) * GAP) / rows;
  expect(Number.isInteger(pw) && Number.isInteger(ph)).toBe(true);
  expect(Math.max(pw, ph)).toBe(160);
  return [pw, ph];
}

// The magenta box outline is drawn on every panel.
async function outlinePixels(file: string): Promise<number> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i] === 255 && data[i + 1] === 0 && data[i + 2] === 255) n++;
  return n;
}

describe('train --attention-maps (CLI)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-attmaps-'));
  const s1 = path.join(tmp, 'stage1');
  const maps1 = path.join(tmp, 'maps1');

  beforeAll(() => {
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', s1, '--max-steps', '2', '--attention-maps', maps1, '--attention-maps-every', '5']);
    if (r.code !== 0) throw new Error(`train-stage1 failed: ${r.stderr}`);
  });

  test('stage 2 writes teacher-vs-student PNGs at step 1 and every N-th step', async () => {
    const s2 = path.join(tmp, 'stage2'), maps = path.join(tmp, 'maps2');
    const r = vreflect(['train-stage2', '--model', s1, ...COMMON, '--output-dir', s2, '--max-steps', '3', '--attention-maps', maps, '--attention-maps-every', '2']);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(maps).sort()).toEqual(['step-1.png', 'step-2.png']);
    for (const f of ['step-1.png', 'step-2.png']) {
      await panels(path.join(maps, f), 2);
      expect(await outlinePixels(path.join(maps, f))).toBeGreaterThan(0);
    }
  });

  test('stage 1 draws the teacher row alone', async () => {
    expect(fs.readdirSync(maps1)).toEqual(['step-1.png']);
    await panels(path.join(maps1, 'step-1.png'), 1);
    expect(await outlinePixels(path.join(maps1, 'step-1.png'))).toBeGreaterThan(0);
  });

  test('--attention-maps-every must be a positive integer', () => {
    const r = vreflect(['train-stage2', '--model', s1, ...COMMON, '--output-dir', path.join(tmp, 'bad'), '--max-steps', '1', '--attention-maps', path.join(tmp, 'x'), '--attention-maps-every', '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--attention-maps-every must be an integer >= 1/);
  });
});
