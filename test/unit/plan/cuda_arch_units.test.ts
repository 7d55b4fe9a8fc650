// The arch-coverage rule (SASS within a major version, PTX JIT upwards) and the byte-size parser.
import { archCoverage, parseArchs } from '../../../src/plan/cuda_arch';
import { formatBytes, parseBytes } from '../../../src/plan/units';

describe('archCoverage', () => {
  test.each([
    ['80;90', 9, 0, true, 'sm_90 SASS'],
    ['80,90', 8, 6, true, 'sm_80 SASS'],
    ['80;90', 8, 9, true, 'sm_80 SASS'],
    ['80;90', 10, 0, true, 'compute_90 PTX'],
    ['80;90', 12, 0, true, 'compute_90 PTX'],
    ['80-real;90-real', 10, 0, false, 'GPU sm_100 is not covered by the compiled archs 80;90'],
    ['80;90', 7, 5, false, 'GPU sm_75 is not covered by the compiled archs 80;90'],
    ['90a', 9, 0, true, 'sm_90a SASS'],
    ['90a', 10, 0, false, 'not covered'],
    ['80-virtual', 9, 0, true, 'compute_80 PTX'],
  ])('%s on sm_%i%i', (archs, major, minor, covered, how) => {
    const c = archCoverage(archs as string, major as number, minor as number);
    expect(c.covered).toBe(covered);
    expect(c.how).toContain(how);
  });
  test('parseArchs ignores junk', () => {
    expect(parseArchs('80;junk;90-real').map((a) => a.arch)).toEqual([80, 90]);
  });
});

describe('parseBytes', () => {
  test('decimal and binary units', () => {
    expect(parseBytes('80GB', 'x')).toBe(80e9);
    expect(parseBytes('80 GiB', 'x')).toBe(80 * 2 ** 30);
    expect(parseBytes('81559MiB', 'x')).toBe(81559 * 2 ** 20);
    expect(parseBytes('1024', 'x')).toBe(1024);
    expect(formatBytes(80 * 2 ** 30)).toBe('80.00 GiB');
  });
  test('bad sizes are one-line errors naming the flag', () => {
    expect(() => parseBytes('eighty', '--gpu-memory')).toThrow(/^--gpu-memory: "eighty" is not a size/);
    expect(() => parseBytes('80XB', '--gpu-memory')).toThrow(/--gpu-memory/);
    expect(() => parseBytes('0GB', '--host-memory')).toThrow(/--host-memory: "0GB" must be a positive size/);
  });
});
