// `vreflect train-stage1 --resume` across devices, as users run it: a checkpoint written by a --device cpu run
// continued with --device cuda (the emulator addon, loaded through VREFLECT_ADDON), and one written by a --device
// cuda run continued on the CPU. The checkpoint (trainer_state.json + optimizer_state.safetensors, train/state_io's
// format) carries no device, so the plumbing is what is checked here: the run resumes at step 2 on the other device,
// with the same data cursor and schedule as the uninterrupted run (every metric but the float ones equal), losses and
// grad norm within 2% of it (bf16 rounding of two backends; a constant lr without warmup, so step 1 moves the
// weights: step 2's loss is 6.88 after it, 8.60 without it), and writes checkpoint-2 at step 2. That the moments and
// the step count are carried exactly is checked on the trainers themselves (test/golden_train/train_resume_cross).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readSafetensorsHeader } from '../../src/model/safetensors';

import { ROOT, runCli } from './cli';

const MODEL = path.join(ROOT, 'test', 'golden', 'models', 'tiny-flat');
const META = path.join(ROOT, 'test', 'fixtures', 'data', 'meta.json');
const BUILD = path.join(ROOT, 'build');
const EMU_ADDON = path.join(BUILD, 'Release', 'vreflect_native_emu.node');
const SKIPPED = [path.join(BUILD, 'vreflect_cuda_emu_tests.skipped'), path.join(BUILD, 'Release', 'vreflect_cuda_emu_tests.skipped')].find((f) => fs.existsSync(f));
const COMMON = ['--model', MODEL, '--data-path', META, '--image-min-pixels', '3136', '--image-max-pixels', '50176',
  '--learning-rate', '1e-3', '--max-steps', '2', '--gradient-accumulation-steps', '1', '--save-steps', '1',
  '--enable-data-packing', 'false', '--dtype', 'bf16', '--lr-scheduler', 'constant', '--warmup-ratio', '0'];
const FLOATS = ['loss', 'loss_ce', 'loss_resampler', 'grad_norm'];

function train(device: 'cpu' | 'cuda', out: string, resume = false) {
  const r = runCli(['train-stage1', ...COMMON, '--output-dir', out, '--device', device, ...(resume ? ['--resume', 'latest'] : [])],
    { env: { VREFLECT_FAKE_CUDA_PROBE: undefined, VREFLECT_ADDON: device === 'cuda' ? EMU_ADDON : undefined }, level: 'info' });
  if (r.code !== 0) throw new Error(`train-stage1 --device ${device}${resume ? ' --resume' : ''} failed: ${r.stderr}`);
  return r.stderr;
}
const metrics = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

const suite = SKIPPED ? describe.skip : describe;

suite('train-stage1 --resume on the other device (emulator addon for cuda)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-resume-cross-'));
  const runs = { cpu: path.join(tmp, 'cpu'), cuda: path.join(tmp, 'cuda') };
  beforeAll(() => {
    if (!fs.existsSync(EMU_ADDON)) throw new Error(`${EMU_ADDON} not built: run npx cmake-js compile`);
    train('cpu', runs.cpu);
    train('cuda', runs.cuda);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test.each([['cpu', 'cuda'], ['cuda', 'cpu']] as ['cpu' | 'cuda', 'cpu' | 'cuda'][])('checkpoint-1 of a --device %s run resumed with --device %s', (from, to) => {
    const dir = path.join(tmp, `${from}-to-${to}`);
    fs.mkdirSync(dir);
    fs.cpSync(path.join(runs[from], 'checkpoint-1'), path.join(dir, 'checkpoint-1'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), fs.readFileSync(path.join(runs[from], 'metrics.jsonl'), 'utf8').split('\n')[0] + '\n');
    const log = train(to, dir, true);
    expect(log).toMatch(/"step":1,"msg":"resumed"/);
    const [got, want] = [metrics(dir), metrics(runs[to])];
    expect(got.map((m) => m.step)).toEqual([1, 2]);
    const rest = (m: Record<string, unknown>) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'elapsed_s' && !FLOATS.includes(k)));
    expect(rest(got[1])).toEqual(rest(want[1]));
    for (const k of FLOATS) expect([k, Math.abs(got[1][k] - want[1][k]) <= 0.02 * Math.abs(want[1][k])]).toEqual([k, true]);
    expect(readSafetensorsHeader(path.join(dir, 'checkpoint-2', 'optimizer_state.safetensors')).metadata.step).toBe('2');
  });
});
