// `vreflect infer` as a user runs it: the compiled CLI in a child process, on the golden tiny checkpoints.
// Checks the JSON contract, that tokens match the transformers fixtures, and that bad input gives a one-line
// error and a non-zero exit (never a crash or a hang).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { expectOneLineError, ROOT, runCli } from './cli';

const GOLDEN = path.join(ROOT, 'test', 'golden');

function vreflect(args: string[]) {
  return runCli(args);
}


describe('vreflect infer (CLI)', () => {
  const latent = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases', 'flat_latent8_small_rep105.json'), 'utf8'));

  test('--json reproduces the transformers tokens of a latent case', () => {
    const r = vreflect([
      'infer', '--model', path.join(GOLDEN, latent.model_dir), '--image', path.join(GOLDEN, latent.image),
      '--prompt', latent.prompt, '--assistant-prefix', latent.assistant_prefix, '--latent-steps', String(latent.latent_steps),
      '--max-new-tokens', String(latent.max_new_tokens), '--repetition-penalty', String(latent.repetition_penalty),
      '--dtype', 'fp32', '--json',
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.token_ids).toEqual(latent.generated_ids);
    expect(out.text).toBe(latent.output_text);
    expect(out.prompt_tokens).toBe(latent.input_ids.length);
    expect(out.latent_steps).toBe(latent.latent_steps);
    for (const k of ['load_ms', 'preprocess_ms', 'vision_ms', 'prefill_ms', 'decode_ms_per_token'])
      expect(typeof out.timings[k]).toBe('number');
  });

  test('--attention-map writes one panel per latent step', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vr-att-')), 'probes.png');
    const r = vreflect([
      'infer', '--model', path.join(GOLDEN, latent.model_dir), '--image', path.join(GOLDEN, latent.image),
      '--prompt', latent.prompt, '--assistant-prefix', '<|lvr_start|>', '--max-new-tokens', '4', '--attention-map', out,
    ]);
    expect(r.code).toBe(0);
    const png = fs.readFileSync(out);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  // Several images in one prompt (BLINK asks up to four): --image repeated, in prompt order.
  test.each(['flat_plain_2img_rep105', 'nested_latent8_3img_rep100'])('--image given several times reproduces the transformers tokens of %s', (name) => {
    const c = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases', `${name}.json`), 'utf8'));
    const r = vreflect([
      'infer', '--model', path.join(GOLDEN, c.model_dir), ...c.images.flatMap((f: string) => ['--image', path.join(GOLDEN, f)]),
      '--prompt', c.prompt, '--assistant-prefix', c.assistant_prefix, '--latent-steps', String(c.latent_steps),
      '--max-new-tokens', String(c.max_new_tokens), '--repetition-penalty', String(c.repetition_penalty), '--dtype', 'fp32', '--json',
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.prompt_tokens).toBe(c.input_ids.length);
    expect(out.token_ids).toEqual(c.generated_ids);
    expect(out.text).toBe(c.output_text);
  });

  describe('bad input: one-line error, non-zero exit', () => {
    const model = path.join(GOLDEN, 'models', 'tiny-flat');
    const image = path.join(GOLDEN, 'images', 'odd_97x61.png');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-bad-'));

    test('missing model directory', () => {
      expectOneLineError(vreflect(['infer', '--model', path.join(tmp, 'nope'), '--image', image, '--prompt', 'hi']), /model/i);
    });
    test('missing image', () => {
      expectOneLineError(vreflect(['infer', '--model', model, '--image', path.join(tmp, 'none.png'), '--prompt', 'hi']), /image/i);
    });
    test('missing second image', () => {
      expectOneLineError(vreflect(['infer', '--model', model, '--image', image, '--image', path.join(tmp, 'none.png'), '--prompt', 'hi']), /image not found: .*none\.png/);
    });
    test('--image without a file', () => {
      expectOneLineError(vreflect(['infer', '--model', model, '--image', '--prompt', 'hi']), /--image needs a file name/);
    });
    test('--attention-map with several images', () => {
      expectOneLineError(
        vreflect(['infer', '--model', model, '--image', image, '--image', image, '--prompt', 'hi', '--attention-map', path.join(tmp, 'a.png')]),
        /--attention-map draws over one image/,
      );
    });
    test('corrupt image', () => {
      const bad = path.join(tmp, 'corrupt.jpg');
      fs.writeFileSync(bad, Buffer.from('this is not a jpeg at all'));
      expectOneLineError(vreflect(['infer', '--model', model, '--image', bad, '--prompt', 'hi']), /corrupt\.jpg/);
    });
    test('image over the pixel cap', () => {
      expectOneLineError(
        vreflect(['infer', '--model', model, '--image', image, '--prompt', 'hi', '--max-image-pixels', '1000']),
        /odd_97x61\.png.*more than the limit of 1000/,
      );
    });
    test('prompt over the context length', () => {
      const dir = path.join(tmp, 'short-context');
      fs.mkdirSync(dir);
      for (const f of fs.readdirSync(model)) fs.copyFileSync(path.join(model, f), path.join(dir, f));
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      cfg.max_position_embeddings = 16;
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
      expectOneLineError(vreflect(['infer', '--model', dir, '--image', image, '--prompt', 'hi']), /context length 16/);
    });
    test('empty prompt', () => {
      expectOneLineError(vreflect(['infer', '--model', model, '--image', image, '--prompt', '  ']), /prompt/i);
    });
    test('checkpoint with a missing tensor', () => {
      const dir = path.join(tmp, 'missing-tensor');
      fs.mkdirSync(dir);
      for (const f of fs.readdirSync(model)) if (f !== 'model.safetensors') fs.copyFileSync(path.join(model, f), path.join(dir, f));
      // rewrite the safetensors header without the final norm
      const buf = fs.readFileSync(path.join(model, 'model.safetensors'));
      const n = Number(buf.readBigUInt64LE(0));
      const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
      delete header['model.norm.weight'];
      let hs = Buffer.from(JSON.stringify(header));
      const pad = (8 - (hs.length % 8)) % 8;
      hs = Buffer.concat([hs, Buffer.alloc(pad, 0x20)]);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(hs.length));
      fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([len, hs, buf.subarray(8 + n)]));
      expectOneLineError(vreflect(['infer', '--model', dir, '--image', image, '--prompt', 'hi']), /model\.norm\.weight/);
    });
    test('truncated safetensors', () => {
      const dir = path.join(tmp, 'truncated');
      fs.mkdirSync(dir);
      for (const f of fs.readdirSync(model)) fs.copyFileSync(path.join(model, f), path.join(dir, f));
      const p = path.join(dir, 'model.safetensors');
      fs.truncateSync(p, fs.statSync(p).size - 1000);
      expectOneLineError(vreflect(['infer', '--model', dir, '--image', image, '--prompt', 'hi']), /truncat|outside|beyond|size/i);
    });
  });
});
