// native/cuda/bench/gpu_session.sh packs what it writes under $OUT into ONE archive at exit (the device tool returns
// at most 8 files), also when it is ended by a signal mid-step; side_by_side.py (its summary printer) lines up the
// bench JSONs. The script is stopped during its first cmake step here: no GPU or build is needed.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '../..');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('gpu_session.sh', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-gpu-session-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  (has('tar') && has('timeout') ? test : test.skip)('a run ended by SIGTERM leaves one .tgz with its logs, nothing loose', () => {
    const out = path.join(dir, 'out');
    const r = spawnSync('timeout', ['-s', 'TERM', '3', 'bash', 'native/cuda/bench/gpu_session.sh'], {
      cwd: root, encoding: 'utf8', env: { ...process.env, OUT: out, BUILD: path.join(dir, 'build') },
    });
    expect(r.stdout).toMatch(/results packed: \$OUT\/gpu-session-\d{8}T\d{6}\.tgz/);
    const files = fs.readdirSync(out);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^gpu-session-.*\.tgz$/);
    const list = spawnSync('tar', ['tzf', path.join(out, files[0])], { encoding: 'utf8' }).stdout;
    expect(list).toContain('./nvidia-smi.txt');
  });

  (has('python3') ? test : test.skip)('side_by_side.py: TFLOP/s rows, GB/s rows for bandwidth-only cases, a missing file named', () => {
    const a = path.join(dir, 'a.json');
    fs.writeFileSync(a, JSON.stringify({ device: { name: 'x' }, results: [
      { kernel: 'swiglu_fwd', shape: { rows: 4096, cols: 18944 }, ms: 0.2, tflops: 0, impl: 'vreflect-vec16', gbs: 2900 },
      { kernel: 'attention_fwd', shape: { seq: 8192 }, causal: true, ms: 1, tflops: 300, impl: 'vreflect-tc' },
    ] }));
    const b = path.join(dir, 'b.json');
    fs.writeFileSync(b, JSON.stringify({ device: { name: 'y' }, results: [
      { kernel: 'attention_fwd', shape: { seq: 8192 }, causal: true, ms: 1.1, tflops: 280, impl: 'torch-sdpa' },
    ] }));
    const r = spawnSync('python3', [path.join(root, 'native/cuda/bench/side_by_side.py'), a, b, path.join(dir, 'missing.json')], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/swiglu_fwd .*vreflect-vec16 2900 GB\/s \(0\.2 ms\)/);
    expect(r.stdout).toMatch(/attention_fwd .*True +vreflect-tc 300 \| torch-sdpa 280/);
    expect(r.stdout).toMatch(/missing\.json: .*No such file/);
  });
});
