// train-stage1 / train-stage2 as users run them, on the tiny golden checkpoint and the data fixtures:
// checkpoints an HF directory `infer` loads, stage 2 from stage 1, resume == uninterrupted, SIGINT saves.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'vreflect.js');
const MODEL = path.join(ROOT, 'test', 'golden', 'models', 'tiny-flat');
const META = path.join(ROOT, 'test', 'fixtures', 'data', 'meta.json');
const COMMON = ['--data-path', META, '--image-min-pixels', '3136', '--image-max-pixels', '50176', '--dtype', 'fp32', '--learning-rate', '1e-3', '--log-level', 'warn'];

function vreflect(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300000, env: { ...process.env, VREFLECT_LOG_JSON: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const metrics = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const strip = (m: Record<string, unknown>) => {
  const { elapsed_s: _e, ...rest } = m;
  return rest;
};

describe('vreflect train-stage1 / train-stage2 (CLI)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-train-'));
  const s1 = path.join(tmp, 'stage1');

  beforeAll(() => {
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', s1, '--max-steps', '4', '--gradient-accumulation-steps', '2', '--save-steps', '2']);
    if (r.code !== 0) throw new Error(`train-stage1 failed: ${r.stderr}`);
  });

  test('stage 1 logs every step and writes checkpoints and a final HF model', () => {
    const m = metrics(s1);
    expect(m.map((x) => x.step)).toEqual([1, 2, 3, 4]);
    for (const x of m) for (const k of ['loss', 'loss_ce', 'loss_resampler', 'grad_norm', 'lr']) expect(Number.isFinite(x[k])).toBe(true);
    expect(m[0].lr).toBe(0); // HF cosine with warmup: the first update uses lr 0
    expect(m[3].loss).toBeLessThan(m[0].loss);
    for (const d of ['checkpoint-2', 'checkpoint-4']) expect(fs.existsSync(path.join(s1, d, 'trainer_state.json'))).toBe(true);
    const cfg = JSON.parse(fs.readFileSync(path.join(s1, 'config.json'), 'utf8'));
    expect(cfg.use_box_feature_resampler).toBe(true);
    expect(cfg.lvr_start_id).toBe(374);
  });

  test('the stage-1 output loads in infer', () => {
    const r = vreflect(['infer', '--model', s1, '--image', path.join(ROOT, 'test', 'golden', 'images', 'odd_97x61.png'), '--prompt', 'What is it?', '--max-new-tokens', '6', '--json', '--log-level', 'warn']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).token_ids.length).toBeGreaterThan(0);
  });

  test('resume from checkpoint-2 gives the same losses and weights as the uninterrupted run', () => {
    const b = path.join(tmp, 'resumed');
    fs.mkdirSync(b);
    fs.cpSync(path.join(s1, 'checkpoint-2'), path.join(b, 'checkpoint-2'), { recursive: true });
    fs.writeFileSync(path.join(b, 'metrics.jsonl'), fs.readFileSync(path.join(s1, 'metrics.jsonl'), 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', b, '--max-steps', '4', '--gradient-accumulation-steps', '2', '--save-steps', '2', '--resume', 'latest']);
    expect(r.code).toBe(0);
    expect(metrics(b).map(strip)).toEqual(metrics(s1).map(strip));
    expect(fs.readFileSync(path.join(b, 'model.safetensors')).equals(fs.readFileSync(path.join(s1, 'model.safetensors')))).toBe(true);
  });

  test('stage 2 trains from the stage-1 checkpoint and saves both heads', () => {
    const s2 = path.join(tmp, 'stage2');
    const r = vreflect(['train-stage2', '--model', s1, ...COMMON, '--output-dir', s2, '--max-steps', '2', '--gradient-accumulation-steps', '1', '--save-steps', '0']);
    expect(r.code).toBe(0);
    const m = metrics(s2);
    expect(m.length).toBe(2);
    for (const k of ['loss_mse', 'loss_kl']) expect(Number.isFinite(m[1][k])).toBe(true);
    const buf = fs.readFileSync(path.join(s2, 'model.safetensors'));
    const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
    expect(Object.keys(header).some((k) => k.startsWith('student_resampler.'))).toBe(true);
    expect(Object.keys(header).some((k) => k.startsWith('box_feature_resampler.'))).toBe(true);
  });

  test('stage 2 refuses a checkpoint without a BCM', () => {
    const r = vreflect(['train-stage2', '--model', MODEL, ...COMMON, '--output-dir', path.join(tmp, 'bad'), '--max-steps', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/box_feature_resampler/);
  });

  test('SIGINT finishes the step, saves a checkpoint and exits cleanly', async () => {
    const out = path.join(tmp, 'sigint');
    const child = spawn(process.execPath, [BIN, 'train-stage1', '--model', MODEL, ...COMMON, '--output-dir', out, '--max-steps', '100000', '--gradient-accumulation-steps', '1', '--save-steps', '0'], { cwd: ROOT, stdio: 'ignore' });
    const file = path.join(out, 'metrics.jsonl');
    for (let i = 0; i < 600 && !(fs.existsSync(file) && fs.readFileSync(file, 'utf8').length > 0); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    const steps = metrics(out).length;
    expect(fs.existsSync(path.join(out, `checkpoint-${steps}`, 'trainer_state.json'))).toBe(true);
  });
});
