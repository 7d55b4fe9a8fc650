// The meta file (--data-path) and record checks.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readMetaFile } from '../../../src/data/meta';
import { loadRecordFile, parseRecord } from '../../../src/data/records';
import { SampleSkip } from '../../../src/data/skips';
import { FIXTURES } from './helpers';

describe('readMetaFile', () => {
  test('the fixture meta file: order kept, paths relative to the meta folder', () => {
    expect(readMetaFile(path.join(FIXTURES, 'meta.json'))).toEqual([
      { dsName: 'ds_a', dataPath: path.join(FIXTURES, 'a.json'), imageFolder: path.join(FIXTURES, 'images'), dsType: 'Q_A' },
      { dsName: 'ds_b', dataPath: path.join(FIXTURES, 'sub/b.json'), imageFolder: path.join(FIXTURES, 'images'), dsType: 'Q_A' },
    ]);
  });

  test('--image-folder overrides every entry (resolved against the cwd)', () => {
    const specs = readMetaFile(path.join(FIXTURES, 'meta.json'), 'elsewhere/imgs');
    expect(specs.map((s) => s.imageFolder)).toEqual([path.resolve('elsewhere/imgs'), path.resolve('elsewhere/imgs')]);
  });

  describe('in a temporary folder', () => {
    let dir: string;
    const meta = (v: unknown, name = 'meta.json') => {
      fs.writeFileSync(path.join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));
      return path.join(dir, name);
    };
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-meta-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('absolute paths stay; a missing image_folder needs --image-folder', () => {
      const m = meta([{ ds_name: 'x', data_path: '/abs/x.json', image_folder: '/abs/imgs' }]);
      expect(readMetaFile(m)[0]).toMatchObject({ dataPath: '/abs/x.json', imageFolder: '/abs/imgs', dsType: undefined });
      const m2 = meta([{ ds_name: 'x', data_path: 'x.json' }]);
      expect(() => readMetaFile(m2)).toThrow(/entry 0 \(x\) has no image_folder; add one or pass --image-folder/);
      expect(readMetaFile(m2, '/i')[0].imageFolder).toBe('/i');
    });

    test("upstream's cwd-relative data_path is used when the meta-relative one does not exist", () => {
      const cwd = process.cwd();
      try {
        fs.mkdirSync(path.join(dir, 'data'));
        fs.writeFileSync(path.join(dir, 'data', 'x.json'), '[]');
        const m = meta([{ ds_name: 'x', data_path: 'data/x.json', image_folder: 'i' }], 'data/meta.json');
        process.chdir(dir);
        expect(readMetaFile(m)[0].dataPath).toBe(path.join(fs.realpathSync(dir), 'data', 'x.json'));
      } finally {
        process.chdir(cwd);
      }
    });

    test.each([
      ['{', /not valid JSON/],
      ['{"a": 1}', /must be a JSON list/],
      ['[]', /lists no dataset/],
      ['[3]', /entry 0 is not an object/],
      ['[{"data_path": "a"}]', /entry 0 needs a non-empty string ds_name/],
      ['[{"ds_name": "a", "data_path": "a", "image_folder": "i"}, {"ds_name": "a", "data_path": "b", "image_folder": "i"}]', /ds_name "a" appears twice/],
      ['[{"ds_name": "a", "data_path": "a", "image_folder": "i", "ds_type": 3}]', /ds_type must be a string/],
    ])('bad meta %s', (text, msg) => {
      expect(() => readMetaFile(meta(text))).toThrow(msg);
    });

    test('a missing meta file and a data file that is not a list are errors naming the file', () => {
      expect(() => readMetaFile(path.join(dir, 'nope.json'))).toThrow(/cannot read the data meta file .*nope\.json \(ENOENT\)/);
      fs.writeFileSync(path.join(dir, 'd.json'), '{"x": 1}');
      expect(() => loadRecordFile(path.join(dir, 'd.json'))).toThrow(/d\.json: a data file must be a JSON list/);
    });
  });
});

describe('parseRecord', () => {
  const good = { dataset: 'gqa', image: ['a.jpg'], conversations: [{ from: 'human', value: '<image>\nq' }, { from: 'gpt', value: '<lvr>a' }], bboxes: [[0, 0, 1, 1]] };

  test('a good record; a string image becomes a list; null dataset is none', () => {
    expect(parseRecord(good)).toEqual({ dataset: 'gqa', images: ['a.jpg'], conversations: good.conversations, bboxes: [[0, 0, 1, 1]] });
    expect(parseRecord({ ...good, image: 'b.jpg', dataset: null }).images).toEqual(['b.jpg']);
    expect(parseRecord({ ...good, dataset: null }).dataset).toBeUndefined();
  });

  test.each([
    ['not an object', 3, /not an object/],
    ['no image', { ...good, image: undefined }, /image must be/],
    ['empty image list', { ...good, image: [] }, /image must be/],
    ['non-string image', { ...good, image: ['a', 2] }, /something other than a non-empty path/],
    ['odd turns', { ...good, conversations: [good.conversations[0]] }, /1 turns/],
    ['gpt first', { ...good, conversations: [good.conversations[1], good.conversations[0]] }, /turn 0 is from "gpt", expected human/],
    ['value not a string', { ...good, conversations: [good.conversations[0], { from: 'gpt', value: 3 }] }, /turn 1 has no string value/],
    ['no bboxes', { ...good, bboxes: undefined }, /bboxes must be a list/],
    ['numeric dataset', { ...good, dataset: 3 }, /dataset is not a string/],
  ])('%s is malformed', (_name, rec, msg) => {
    let err: unknown;
    try {
      parseRecord(rec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SampleSkip);
    expect((err as SampleSkip).reason).toBe('malformed_record');
    expect((err as SampleSkip).message).toMatch(msg);
  });
});
