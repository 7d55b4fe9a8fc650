// The PyTorch side of `vreflect bench kernels` is driven by arguments: --quick, and with --elementwise the full
// kernel list (the compute kernels plus the memory-bound ones). A stand-in "python" records what it was given.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { runTorchSide } from '../../../src/bench/kernels_run';

function fakePython(dir: string): string {
  const py = path.join(dir, 'python');
  // `-c ...` is the torch / CUDA probe: say yes. Otherwise print one report whose device name holds the arguments.
  fs.writeFileSync(py, '#!/bin/sh\nif [ "$1" = "-c" ]; then exit 0; fi\nshift\nprintf \'{"device":{"name":"%s"},"date":"d","results":[]}\\n\' "$*"\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'torch_kernels.py'), '# stand-in\n');
  return py;
}

describe('bench kernels side arguments', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-sides-'));
  const python = fakePython(dir);
  const script = path.join(dir, 'torch_kernels.py');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('default: --json (and --quick) only', () => {
    expect(runTorchSide({ python, script, quick: false, timeoutS: 30 }).bench?.device.name).toBe('--json');
    expect(runTorchSide({ python, script, quick: true, timeoutS: 30 }).bench?.device.name).toBe('--json --quick');
  });

  test('--elementwise: every compute kernel and every memory-bound kernel named', () => {
    const name = runTorchSide({ python, script, quick: true, elementwise: true, timeoutS: 30 }).bench?.device.name ?? '';
    const m = /--kernels (\S+)/.exec(name);
    expect(m).not.toBeNull();
    const ks = m![1].split(',');
    for (const k of ['attention_fwd', 'attention_bwd', 'gemm', 'cross_attention_bwd', 'swiglu_fwd', 'rmsnorm_bwd', 'cross_entropy', 'adamw']) expect(ks).toContain(k);
  });
});
