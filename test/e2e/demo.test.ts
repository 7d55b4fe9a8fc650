// `vreflect demo`: its parts against independent references (GPT-2's byte table and HF `tokenizers` for the
// BPE, decoded pixels for the pictures and boxes, the project's V* loader for the held-out split), then the
// --quick demo through the yargs command: every stage's outputs, eval files, the attention map, the report.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import yargs from 'yargs';

import { demoCommand } from '../../src/cli/commands/demo';
import { byteToUnicode, trainBpe } from '../../src/demo/bpe';
import { demoCorpus, writeDemoData } from '../../src/demo/dataset';
import { CAVEAT } from '../../src/demo/report';
import { demoPlan, prepareOutputDir } from '../../src/demo/run';
import { IMAGE_SIZE, randomScene, renderScene } from '../../src/demo/scene';
import { addedTokenIds, tokenizerJson } from '../../src/demo/tokenizer_files';
import { DEMO_SHAPE, writeTinyModel } from '../../src/demo/tiny_model';
import { Pcg32 } from '../../src/data/prng';
import { openBenchmark } from '../../src/eval/benchmarks';
import { loadModelConfig } from '../../src/model/config';
import { loadTokenizer, tokenizerFromJson } from '../../src/model/tokenizer';
import { readSafetensorsHeader } from '../../src/model/safetensors';
import { setLogLevel } from '../../src/util/log';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-demo-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('demo tokenizer', () => {
  const bpe = trainBpe(demoCorpus());
  const tok = tokenizerFromJson(JSON.stringify(tokenizerJson(bpe)));

  test("byte table is GPT-2's bytes_to_unicode", () => {
    const t = byteToUnicode();
    expect([t[0], t[10], t[32], t[33], t[65], t[127], t[173], t[255]]).toEqual(['Ā', 'Ċ', 'Ġ', '!', 'A', 'ġ', 'Ń', 'ÿ']);
    expect(new Set(t).size).toBe(256);
  });

  test('HF tokenizers encodes every word of the demo text as one token', async () => {
    const ids = await tok.encode('<|im_start|>user\nIs the yellow circle on the left or right side of the image?\n(A) left\n(B) right');
    const pieces = ids.map((i) => tok.idToToken(i));
    expect(pieces).toEqual(['<|im_start|>', 'user', 'Ċ', 'Is', 'Ġthe', 'Ġyellow', 'Ġcircle', 'Ġon', 'Ġthe', 'Ġleft', 'Ġor', 'Ġright', 'Ġside', 'Ġof', 'Ġthe', 'Ġimage', '?Ċ', '(A', ')', 'Ġleft', 'Ċ', '(B', ')', 'Ġright']);
  });

  test('any text round-trips through the byte fallback', async () => {
    for (const s of ['Grüße, 世界! 123\ttabs\r\n', 'What is the color of the square?']) expect(tok.decode(await tok.encode(s))).toBe(s);
  });

  test('Qwen special tokens and the 4 LVR tokens follow the BPE vocabulary, in order', () => {
    const ids = addedTokenIds(bpe);
    expect(ids['<|endoftext|>']).toBe(bpe.vocab.size);
    expect(ids['<|lvr_end|>']).toBe(bpe.vocab.size + 17);
    for (const [t, id] of Object.entries(ids)) expect(tok.tokenToId(t)).toBe(id);
  });
});

describe('demo pictures and data', () => {
  test('the box is where the object is drawn, in its colour', async () => {
    const rng = new Pcg32(7);
    for (let k = 0; k < 4; k++) {
      const scene = randomScene(rng);
      const { data } = await sharp(await renderScene(scene)).raw().toBuffer({ resolveWithObject: true });
      const want = { red: [214, 40, 40], green: [42, 157, 63], blue: [29, 78, 216], yellow: [242, 200, 29] }[scene.colour];
      // pixels clearly of the object's colour (background is grey: r = g = b within noise)
      let x0 = IMAGE_SIZE, y0 = IMAGE_SIZE, x1 = -1, y1 = -1;
      for (let y = 0; y < IMAGE_SIZE; y++)
        for (let x = 0; x < IMAGE_SIZE; x++) {
          const p = (y * IMAGE_SIZE + x) * 3;
          if (want.every((v, c) => Math.abs(data[p + c] - v) < 40)) {
            x0 = Math.min(x0, x), y0 = Math.min(y0, y), x1 = Math.max(x1, x), y1 = Math.max(y1, y);
          }
        }
      const box = scene.box.map((v) => v * IMAGE_SIZE);
      expect(Math.abs(x0 - box[0])).toBeLessThanOrEqual(2);
      expect(Math.abs(y0 - box[1])).toBeLessThanOrEqual(2);
      expect(Math.abs(x1 + 1 - box[2])).toBeLessThanOrEqual(2);
      expect(Math.abs(y1 + 1 - box[3])).toBeLessThanOrEqual(2);
      expect((x0 + x1) / 2 < IMAGE_SIZE / 2).toBe(scene.side === 'left');
    }
  });

  test('training records and the held-out split load through the project readers', async () => {
    const d = await writeDemoData({ root: path.join(tmp, 'data'), trainItems: 6, heldoutItems: 8, seed: 3 });
    const train = JSON.parse(fs.readFileSync(path.join(tmp, 'data', 'train', 'train.json'), 'utf8'));
    expect(train).toHaveLength(6);
    expect(train[0].conversations[1].value).toMatch(/^<lvr>\n<answer> [A-D] <\/answer>$/);
    const warm = JSON.parse(fs.readFileSync(path.join(tmp, 'data', 'train', 'warmup.json'), 'utf8'));
    expect(warm[0].bboxes).toEqual([[]]);
    const bench = await openBenchmark('VSTAR', d.heldoutRoot);
    expect(bench.items.map((i) => [i.label, i.category])).toEqual([
      ['A', 'direct_attributes'], ['A', 'relative_position'], ['B', 'direct_attributes'], ['B', 'relative_position'],
      ['C', 'direct_attributes'], ['A', 'relative_position'], ['D', 'direct_attributes'], ['B', 'relative_position'],
    ]);
    expect(bench.items[0].prompt).toMatch(/^What is the color of the (circle|square)\?\n\(A\) red\n\(B\) green\n\(C\) blue\n\(D\) yellow\n/);
    expect(bench.items.every((i) => !i.error)).toBe(true);
  });

  test('the tiny checkpoint has every tensor the config implies and a matching tokenizer', async () => {
    const m = writeTinyModel(path.join(tmp, 'model'), trainBpe(demoCorpus()), DEMO_SHAPE, 5);
    const cfg = loadModelConfig(m.dir);
    await loadTokenizer(m.dir, cfg); // checks the config's token ids against the tokenizer
    const h = readSafetensorsHeader(path.join(m.dir, 'model.safetensors'));
    expect(h.tensors.get('model.embed_tokens.weight')?.shape).toEqual([m.vocabSize, DEMO_SHAPE.hidden]);
    expect(h.tensors.get('visual.merger.mlp.2.weight')?.shape).toEqual([DEMO_SHAPE.hidden, 4 * DEMO_SHAPE.vitHidden]);
    expect(cfg.text.mropeSection.reduce((a, b) => a + b, 0)).toBe(DEMO_SHAPE.hidden / DEMO_SHAPE.heads / 2);
  });
});

describe('vreflect demo --quick', () => {
  const out = path.join(tmp, 'run');
  let stdout = '';

  beforeAll(async () => {
    setLogLevel('warn');
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    (process.stdout as any).write = (s: string) => ((stdout += s), true);
    (process.stderr as any).write = () => true;
    try {
      await yargs().command(demoCommand).strict().fail(false).exitProcess(false).parseAsync(['demo', '--quick', '--output-dir', out, '--seed', '4']);
    } finally {
      (process.stdout as any).write = write;
      (process.stderr as any).write = errWrite;
    }
  });

  test('each stage trains from the previous one and writes metrics, a checkpoint and an HF model', () => {
    const plan = demoPlan(true);
    for (const [dir, st] of [['warmup', plan.stages[0]], ['stage1', plan.stages[1]], ['stage2', plan.stages[2]]] as const) {
      const m = fs.readFileSync(path.join(out, dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(m.map((x) => x.step)).toEqual(Array.from({ length: st.steps }, (_, i) => i + 1));
      expect(fs.existsSync(path.join(out, dir, `checkpoint-${st.steps}`, 'trainer_state.json'))).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(out, dir, 'config.json'), 'utf8')).use_stage2_distillation).toBe(st.stage === 2);
    }
    // a random model starts at the uniform cross-entropy, ln(vocab); the warm-up brings it down
    const warm = fs.readFileSync(path.join(out, 'warmup', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const vocab = JSON.parse(fs.readFileSync(path.join(out, 'base-model', 'config.json'), 'utf8')).vocab_size;
    expect(Math.abs(warm[0].loss_ce - Math.log(vocab))).toBeLessThan(0.3);
    expect(warm[warm.length - 1].loss_ce).toBeLessThan(warm[0].loss_ce - 1);
    const names = [...readSafetensorsHeader(path.join(out, 'stage2', 'model.safetensors')).tensors.keys()];
    expect(names.some((n) => n.startsWith('student_resampler.'))).toBe(true);
    expect(names.some((n) => n.startsWith('box_feature_resampler.'))).toBe(true);
  });

  test('eval wrote V* results of both checkpoints for 0 and 8 latent steps, and infer an attention map', async () => {
    for (const model of ['stage1', 'stage2'])
      for (const s of [0, 8]) {
        const file = path.join(out, 'results', model, 'vstar_bench', 'decoding_by_steps', model, `step${s}.json`);
        const items = JSON.parse(fs.readFileSync(file, 'utf8'));
        expect(items.filter((i: any) => 'prediction' in i)).toHaveLength(demoPlan(true).heldoutItems);
      }
    const meta = await sharp(path.join(out, 'attention_map.png')).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(IMAGE_SIZE);
  });

  test('the report has the loss table, both eval rows, the paths and the caveat', () => {
    expect(stdout).toMatch(/^warm-up\s+12\s/m);
    expect(stdout).toMatch(/^stage 2\s+6\s.*mse \d/m);
    for (const model of ['stage1', 'stage2']) for (const steps of [0, 8]) expect(stdout).toMatch(new RegExp(`^${model}\\s+${steps}\\s+\\d+\\.\\d%`, 'm'));
    expect(stdout).toContain(path.join(out, 'stage2'));
    expect(stdout).toContain('attention_map.png');
    expect(stdout).toContain(CAVEAT);
  });

  test('a re-run may replace the demo folder, never a foreign one', async () => {
    const foreign = path.join(tmp, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    await expect(yargs().command(demoCommand).strict().fail(false).exitProcess(false).parseAsync(['demo', '--quick', '--output-dir', foreign])).rejects.toThrow(/not empty and was not written by vreflect demo/);
    expect(fs.readFileSync(path.join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
    const again = path.join(tmp, 'again');
    prepareOutputDir(again);
    fs.mkdirSync(path.join(again, 'stage1'));
    prepareOutputDir(again);
    expect(fs.readdirSync(again)).toEqual(['.vreflect-demo']);
  });
});
