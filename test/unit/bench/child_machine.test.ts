// Child-process JSON protocol and /proc/cpuinfo parsing of the benchmark.
import { lastJsonLine, runJsonChild } from '../../../src/bench/child';
import { cpuLine, describeCpu, foreignLoad, parseProcStat, rssBytes } from '../../../src/bench/machine';

const node = (code: string, timeoutMs = 20_000) => runJsonChild(process.execPath, ['-e', code], { label: 'child', timeoutMs });

describe('bench child processes', () => {
  test('lastJsonLine takes the last JSON object line', () => {
    expect(lastJsonLine('noise\n{"a":1}\n{"b":2}\ntrailing text\n')).toEqual({ b: 2 });
    expect(lastJsonLine('{broken\n[1,2]\n')).toBeUndefined();
  });

  test('answer, failure answer, crash, timeout', async () => {
    await expect(node('console.log("x"); console.log(JSON.stringify({ok: true, v: 3}))')).resolves.toEqual({ ok: true, v: 3 });
    await expect(node('console.log(JSON.stringify({ok: false, error: "no torch"})); process.exit(1)')).rejects.toThrow(/^child: no torch$/);
    await expect(node('console.error("Error: boom"); process.exit(3)')).rejects.toThrow(/child: exit code 3: Error: boom/);
    await expect(node('setTimeout(() => {}, 10000)', 300)).rejects.toThrow(/no answer within 0 s/);
    await expect(runJsonChild('/nonexistent/python', [], { label: 'py', timeoutMs: 5000 })).rejects.toThrow(/py: cannot start/);
  });
});

describe('machine description', () => {
  const intel = 'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n\nprocessor\t: 1\n';
  test('Intel with AMX', () => {
    const c = describeCpu(intel, 2);
    expect(c).toMatchObject({ vendor: 'GenuineIntel', family: 6, modelNumber: 143, amx_bf16: true, avx512_bf16: true });
    expect(cpuLine(c)).toBe('Intel(R) Xeon(R) Platinum 8481C (Sapphire Rapids or later, family 6 model 143), 2 logical CPUs, AMX-BF16, AVX-512-BF16');
  });
  test('AMD Zen 4 without AMX; empty input', () => {
    const c = describeCpu('vendor_id : AuthenticAMD\ncpu family : 25\nmodel : 17\nmodel name : AMD EPYC 9B14\nflags : avx512f avx512_bf16\n', 2);
    expect(c.microarchitecture).toBe('Zen 4');
    expect(cpuLine(c)).toMatch(/no AMX, AVX-512-BF16$/);
    expect(describeCpu('', 1).model).toBe('unknown');
  });
  test('rss figures are positive', () => {
    const r = rssBytes();
    expect(r.peak).toBeGreaterThanOrEqual(r.current);
    expect(r.current).toBeGreaterThan(0);
  });
});

describe('load of other work', () => {
  test('/proc/stat parsing (USER_HZ 100)', () => {
    const t = parseProcStat('cpu  1000 50 200 5000 30 10 20 40 0 0\ncpu0 1 2 3 4\n');
    expect(t).toEqual({ busy: 12.8, steal: 0.4, total: 63.5 });
    expect(parseProcStat('intr 1 2 3')).toBeUndefined();
  });
  test('foreign cores = machine busy time minus our own CPU time, per wall second', () => {
    const a = { busy: 100, steal: 1, total: 1000 };
    const b = { busy: 120, steal: 2, total: 1020 };
    const f = foreignLoad(a, b, 15, 10)!;
    expect(f.cores).toBeCloseTo(0.5, 9); // 20 s busy, 15 s ours, over 10 s
    expect(f.steal).toBeCloseTo(0.1, 9);
    expect(foreignLoad(a, b, 30, 10)!.cores).toBe(0); // never negative
    expect(foreignLoad(undefined, b, 1, 1)).toBeUndefined();
  });
});
