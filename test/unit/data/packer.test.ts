// Upstream's packing (method.md §5.2): Appendix F's trace with the released parameters, and hand traces of the
// other branches with small parameters. Items are {id, len}; packs are shown as id lists.
import { DEFAULT_PACKING } from '../../../src/data/constants';
import { Packer, PackingOptions } from '../../../src/data/packer';

interface It {
  id: string;
  len: number;
}

function run(opts: PackingOptions, lens: number[]): { emitted: string[][][]; packer: Packer<It> } {
  const packer = new Packer<It>(opts, (x) => x.len);
  const emitted = lens.map((len, i) => packer.push({ id: `${String.fromCharCode(97 + i)}${len}`, len }).map((p) => p.map((x) => x.id)));
  return { emitted, packer };
}
const ids = (packs: It[][]) => packs.map((p) => p.map((x) => x.id));

test('Appendix F: 1200, 5000, 800, 900, 3000, 4100, 700, 650 with 4 x 4096 / 16384', () => {
  const { emitted, packer } = run({ ...DEFAULT_PACKING }, [1200, 5000, 800, 900, 3000, 4100, 700, 650]);
  expect(emitted).toEqual([
    [], // 1200 opens buffer A
    [['b5000']], // >= 4096: alone, at once
    [], // A(2)
    [], // A(3)
    [['a1200', 'c800', 'd900', 'e3000']], // A(4) -> emitted
    [['f4100']],
    [], // B(1)
    [], // B(2)
  ]);
  expect(ids(packer.open())).toEqual([['g700', 'h650']]);
  expect(ids(packer.flush())).toEqual([['g700', 'h650']]);
  expect(packer.open()).toEqual([]);
});

test('released parameters: 4095-token samples still group by 4 (4 x 4095 < 16384)', () => {
  const { emitted } = run({ ...DEFAULT_PACKING }, [4095, 4095, 4095, 4095, 4096]);
  expect(emitted).toEqual([[], [], [], [['a4095', 'b4095', 'c4095', 'd4095']], [['e4096']]]);
});

test('several open buffers, first fit in descending length order, and the exact-limit split', () => {
  // limit 10 tokens, long >= 6, 3 instances, up to 2 open buffers
  const { emitted, packer } = run({ maxPackedTokens: 10, longSeqThreshold: 6, maxInstancesPerPack: 3, maxBufferSize: 2 }, [5, 4, 3, 6, 5, 2, 5, 1]);
  expect(emitted).toEqual([
    [], // A = [a5]
    [], // A = [a5, b4] (9)
    [], // 9 + 3 > 10: B = [c3]; list A(9), B(3)
    [['d6']], // long
    [], // A full for 5; B = [c3, e5] (8)
    [['c3', 'e5']], // B + 2 = 10 = limit: split; left (8) >= right (2): left emitted, [f2] kept
    [], // A(9) no; [f2, g5] (7)
    [['a5', 'b4']], // A + 1 = 10: left (9) emitted, [h1] kept
  ]);
  expect(ids(packer.open())).toEqual([['f2', 'g5'], ['h1']]);
});

test('the exact-limit split emits the right instance when it is the longer part', () => {
  const { emitted, packer } = run({ maxPackedTokens: 10, longSeqThreshold: 8, maxInstancesPerPack: 4, maxBufferSize: 100 }, [3, 7]);
  expect(emitted).toEqual([[], [['b7']]]);
  expect(ids(packer.open())).toEqual([['a3']]);
});

test('more than maxBufferSize open buffers: the longest is emitted', () => {
  const { emitted, packer } = run({ maxPackedTokens: 10, longSeqThreshold: 6, maxInstancesPerPack: 3, maxBufferSize: 1 }, [5, 4, 3]);
  expect(emitted).toEqual([[], [], [['a5', 'b4']]]);
  expect(ids(packer.open())).toEqual([['c3']]);
});

test('restore() continues exactly like the original packer', () => {
  const opts = { maxPackedTokens: 10, longSeqThreshold: 6, maxInstancesPerPack: 3, maxBufferSize: 2 };
  const lens = [5, 4, 3, 6, 5, 2, 5, 1];
  const full = run(opts, lens).emitted;
  const first = run(opts, lens.slice(0, 5));
  const resumed = new Packer<It>(opts, (x) => x.len);
  resumed.restore(JSON.parse(JSON.stringify(first.packer.open())));
  const rest = lens.slice(5).map((len, i) => resumed.push({ id: `${String.fromCharCode(102 + i)}${len}`, len }).map((p) => p.map((x) => x.id)));
  expect([...first.emitted, ...rest]).toEqual(full);
});

test('bad parameters and oversized samples are errors', () => {
  expect(() => new Packer({ ...DEFAULT_PACKING, maxInstancesPerPack: 0 }, () => 1)).toThrow(/maxInstancesPerPack must be a positive integer/);
  const p = new Packer<number>({ ...DEFAULT_PACKING }, (x) => x);
  expect(() => p.push(16385)).toThrow(/16385-token sample exceeds the 16384-token pack limit/);
  expect(p.push(16384)).toEqual([[16384]]);
});
