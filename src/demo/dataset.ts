// The demo's synthetic grounded-VQA data. Two question kinds about the picture's one object, in V* Bench's
// wording and layout (V* is the held-out format):
//   direct_attributes  "What is the color of the circle?" (A) red (B) green (C) blue (D) yellow
//   relative_position  "Is the red circle on the left or right side of the image?" (A) left (B) right
// The object's box is the record's gold box. Training records are upstream's LLaVA format (`<image>` / `<lvr>`
// placeholders, normalised `bboxes`, answers `<lvr>\n<answer> X </answer>`); the held-out split is a V* Bench
// folder (test_questions.jsonl + JPEGs) that `vreflect eval --benchmarks vstar` reads as it reads the real one.
//
// Options keep one order (V* shuffles them): with shuffled options a one-minute model must also learn to find
// the option line that names the colour, which it does not (measured: 30% on colours vs 70% with fixed order).
import * as fs from 'fs';
import * as path from 'path';

import { Pcg32 } from '../data/prng';
import { TASK_INSTRUCTION, vstarPrompt } from '../eval/prompts';
import { DEFAULT_SYSTEM_PROMPT } from '../model/chat';
import { COLOURS, Colour, Scene, SHAPES, Side, randomScene, renderScene } from './scene';

export type QuestionKind = 'direct_attributes' | 'relative_position';
export const QUESTION_KINDS: readonly QuestionKind[] = ['direct_attributes', 'relative_position'];

export interface Question {
  kind: QuestionKind;
  /** V*'s `text`: question, one "(X) option" line per option, then the instruction line */
  text: string;
  label: string;
  /** options of this kind, for the chance level */
  options: number;
}

const LETTERS = 'ABCD';
const SIDES: readonly Side[] = ['left', 'right'];

function withOptions(question: string, options: readonly string[]): string {
  const lines = options.map((o, i) => `(${LETTERS[i]}) ${o}`).join('\n');
  return `${question}\n${lines}${TASK_INSTRUCTION}`;
}

export function makeQuestion(scene: Scene, kind: QuestionKind): Question {
  if (kind === 'direct_attributes')
    return { kind, text: withOptions(`What is the color of the ${scene.shape}?`, COLOURS), label: LETTERS[COLOURS.indexOf(scene.colour)], options: COLOURS.length };
  return {
    kind,
    text: withOptions(`Is the ${scene.colour} ${scene.shape} on the left or right side of the image?`, SIDES),
    label: LETTERS[SIDES.indexOf(scene.side)],
    options: SIDES.length,
  };
}

/** Text the demo's BPE is trained on: the chat scaffolding and every question/answer form the demo writes. */
export function demoCorpus(): string[] {
  const texts = [`system\n${DEFAULT_SYSTEM_PROMPT}\nuser\nassistant\n`, TASK_INSTRUCTION, ...[...LETTERS].map((l) => `\n<answer> ${l} </answer>`)];
  for (const shape of SHAPES)
    for (const colour of COLOURS)
      for (const side of SIDES) {
        const scene: Scene = { ...randomScene(new Pcg32(0), { colour, side }), shape };
        for (const kind of QUESTION_KINDS) texts.push(vstarPrompt(makeQuestion(scene, kind).text));
      }
  // twice over: the trainer merges only pairs seen at least twice, and each word should become one token
  return [...texts, ...texts];
}

export interface DemoDataSpec {
  root: string;
  trainItems: number;
  heldoutItems: number;
  seed: number;
}

export interface HeldoutItem {
  id: number;
  /** path relative to vstar_bench/ */
  image: string;
  text: string;
  label: string;
  category: QuestionKind;
  options: number;
}

export interface DemoData {
  /** meta file of the training records (gold boxes) */
  meta: string;
  /** meta file of the warm-up records: the same records with the dummy box (see writeDemoData) */
  warmupMeta: string;
  trainRecords: number;
  /** folder holding vstar_bench/ (eval --data-root) */
  heldoutRoot: string;
  heldout: HeldoutItem[];
}

/** Alternating kinds; on the held-out split, answers cycle through the options so that every one is equally common. */
function heldoutScene(rng: Pcg32, i: number): { scene: Scene; kind: QuestionKind } {
  const kind = QUESTION_KINDS[i % 2];
  const k = Math.floor(i / 2);
  return kind === 'direct_attributes'
    ? { kind, scene: randomScene(rng, { colour: COLOURS[k % COLOURS.length] }) }
    : { kind, scene: randomScene(rng, { side: SIDES[k % SIDES.length] }) };
}

function writeMeta(file: string, dsName: string, dataPath: string): void {
  fs.writeFileSync(file, JSON.stringify([{ ds_name: dsName, data_path: dataPath, image_folder: 'images', ds_type: 'Q_A' }], null, 1) + '\n');
}

/**
 * Writes data/train (images, train.json + meta.json with the gold boxes, warmup.json + meta_warmup.json) and
 * data/heldout/vstar_bench. The warm-up records carry the dummy box (an empty box: the BCM sees token 0 only,
 * method.md §3), so their latent slots hold nothing about the answer and the model has to learn to answer from
 * the picture, as the Instruct model upstream starts from already does.
 */
export async function writeDemoData(spec: DemoDataSpec): Promise<DemoData> {
  const trainDir = path.join(spec.root, 'train');
  const imageDir = path.join(trainDir, 'images', 'demo');
  fs.mkdirSync(imageDir, { recursive: true });
  // one stream per split, so the held-out split does not change with the number of training items
  const trainRng = new Pcg32(spec.seed, 101);
  const records: Record<string, unknown>[] = [];
  for (let i = 0; i < spec.trainItems; i++) {
    const scene = randomScene(trainRng);
    const q = makeQuestion(scene, QUESTION_KINDS[trainRng.below(2)]);
    const name = `${String(i).padStart(5, '0')}.jpg`;
    fs.writeFileSync(path.join(imageDir, name), await renderScene(scene));
    records.push({
      id: `demo-${i}`,
      dataset: 'demo',
      image: [`demo/${name}`],
      conversations: [
        { from: 'human', value: `<image>\n${vstarPrompt(q.text)}` },
        { from: 'gpt', value: `<lvr>\n<answer> ${q.label} </answer>` },
      ],
      bboxes: [scene.box],
    });
  }
  fs.writeFileSync(path.join(trainDir, 'train.json'), JSON.stringify(records, null, 1) + '\n');
  fs.writeFileSync(path.join(trainDir, 'warmup.json'), JSON.stringify(records.map((r) => ({ ...r, bboxes: [[]] })), null, 1) + '\n');
  const meta = path.join(trainDir, 'meta.json');
  const warmupMeta = path.join(trainDir, 'meta_warmup.json');
  writeMeta(meta, 'demo_shapes', 'train.json');
  writeMeta(warmupMeta, 'demo_shapes_warmup', 'warmup.json');

  const heldoutRoot = path.join(spec.root, 'heldout');
  const vstar = path.join(heldoutRoot, 'vstar_bench');
  const heldRng = new Pcg32(spec.seed, 202);
  const heldout: HeldoutItem[] = [];
  for (let i = 0; i < spec.heldoutItems; i++) {
    const { scene, kind } = heldoutScene(heldRng, i);
    const q = makeQuestion(scene, kind);
    const image = `${kind}/demo_${String(i).padStart(4, '0')}.jpg`;
    fs.mkdirSync(path.join(vstar, kind), { recursive: true });
    fs.writeFileSync(path.join(vstar, image), await renderScene(scene));
    heldout.push({ id: i, image, text: q.text, label: q.label, category: kind, options: q.options });
  }
  const rows = heldout.map((h) => JSON.stringify({ image: h.image, text: h.text, category: h.category, question_id: h.id, label: h.label }));
  fs.writeFileSync(path.join(vstar, 'test_questions.jsonl'), rows.join('\n') + '\n');
  return { meta, warmupMeta, trainRecords: records.length, heldoutRoot, heldout };
}
