// vreflect infer: one prompt with its images (none, one or several) through Qwen2.5-VL / V-Reflection with latent
// decoding.
import * as fs from 'fs';
import type { CommandModule } from 'yargs';

import { Engine } from '../../infer/engine';
import { requireIntArg } from '../int_arg';
import { inferDevicePreflight } from '../../plan/device_runs';
import { DEVICE_OPTION } from '../../plan/preflight';
import { UserError } from '../../util/errors';
import { log } from '../../util/log';
import { Progress, startProgress } from '../../util/progress';
import { writeAttentionMap } from '../../viz/attention_map';

interface InferArgs {
  model: string;
  image?: string[];
  prompt: string;
  'assistant-prefix': string;
  'latent-steps': number;
  'max-new-tokens': number;
  'repetition-penalty'?: number;
  'min-pixels'?: number;
  'max-pixels'?: number;
  'max-image-pixels'?: number;
  dtype: 'auto' | 'fp32' | 'bf16';
  device: 'cpu' | 'cuda' | 'auto';
  threads?: number;
  'prefill-chunk': number;
  json: boolean;
  'attention-map'?: string;
}

export const inferCommand: CommandModule<object, InferArgs> = {
  command: 'infer',
  describe: 'answer a question about an image (V-Reflection latent decoding, or plain decoding)',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Hugging Face Qwen2.5-VL / V-Reflection checkpoint directory' })
      .option('image', { type: 'string', array: true, describe: 'image file (JPEG, PNG, WebP); give several (--image a.jpg --image b.jpg) for one prompt over several images, in that order, as BLINK asks; omit for a text-only prompt' })
      .option('prompt', { type: 'string', demandOption: true, describe: 'the user text' })
      .option('assistant-prefix', {
        type: 'string',
        default: '',
        describe: 'text appended after "<|im_start|>assistant\\n" (special tokens recognised); ending it in <|lvr_start|> forces latent reasoning',
      })
      .option('latent-steps', { type: 'number', default: 8, describe: 'latent steps per <|lvr_start|> (0 = plain decoding)' })
      .option('max-new-tokens', { type: 'number', default: 512, describe: 'generated-token limit (not counted while latent mode is on)' })
      .option('repetition-penalty', { type: 'number', describe: 'HF repetition penalty (default: generation_config.json, else 1.0)' })
      .option('min-pixels', { type: 'number', describe: 'override preprocessor_config.json min_pixels' })
      .option('max-pixels', { type: 'number', describe: 'override preprocessor_config.json max_pixels' })
      .option('max-image-pixels', { type: 'number', describe: "refuse images with more pixels (default: Pillow's decompression-bomb limit, 178956970)" })
      .option('dtype', { choices: ['auto', 'fp32', 'bf16'] as const, default: 'auto' as const, describe: 'GEMM precision (auto: bf16 for bf16 checkpoints)' })
      .option('device', DEVICE_OPTION)
      .option('threads', { type: 'number', describe: 'CPU threads (default: all cores)' })
      .option('prefill-chunk', { type: 'number', default: 0, describe: 'prompt tokens per decoder forward (chunked prefill bounds activation memory); 0: whole prompt, on cuda unless the free GPU memory needs chunks' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object (text, token_ids, prompt_tokens, latent_steps, timings)' })
      .option('attention-map', { type: 'string', describe: 'write a PNG: per latent step, attention over the image (mean over heads and layers)' })
      .example('$0 infer --model ./Qwen2.5-VL-7B-Instruct --image sign.jpg --prompt "What is written on the sign?"', '')
      .example('$0 infer --model ./V-Reflection-7B --image x.jpg --prompt "..." --latent-steps 8 --json --attention-map probes.png', ''),
  handler: async (args) => {
    if (!args.prompt.trim()) throw new UserError('--prompt is empty');
    if (!Number.isInteger(args['latent-steps']) || args['latent-steps'] < 0) throw new UserError('--latent-steps must be an integer >= 0');
    if (!Number.isInteger(args['max-new-tokens']) || args['max-new-tokens'] < 1) throw new UserError('--max-new-tokens must be an integer >= 1');
    const images = args.image ?? [];
    if (args.image && (images.length === 0 || images.some((f) => f === ''))) throw new UserError('--image needs a file name');
    for (const image of images) if (!fs.existsSync(image)) throw new UserError(`image not found: ${image}`);
    if (args['attention-map'] && images.length > 1) throw new UserError('--attention-map draws over one image: give a single --image');
    if (!fs.existsSync(args.model)) throw new UserError(`model directory not found: ${args.model}`);
    requireIntArg('--prefill-chunk', args['prefill-chunk'], 0);
    const device = await inferDevicePreflight({ device: args.device, model: args.model, images, maxNewTokens: args['max-new-tokens'], latentSteps: args['latent-steps'], minPixels: args['min-pixels'], maxPixels: args['max-pixels'] });

    const engine = await Engine.load(args.model, { dtype: args.dtype, threads: args.threads, device, prefillChunk: args['prefill-chunk'] });
    log().info({ model: engine.dir, dtype: engine.dtype, device: engine.deviceName, load_ms: engine.loadMs }, 'model loaded');
    // A bar for the prefill (ViT blocks + LLM layers) on a TTY; it can take minutes for big images on a CPU.
    let bar: Progress | undefined;
    const r = await engine.run({
      onPrefillProgress: process.stderr.isTTY
        ? (done, total) => {
            bar ??= startProgress('prefill', total);
            bar.update(done);
          }
        : undefined,
      images,
      prompt: args.prompt,
      assistantPrefix: args['assistant-prefix'],
      latentSteps: args['latent-steps'],
      maxNewTokens: args['max-new-tokens'],
      repetitionPenalty: args['repetition-penalty'],
      minPixels: args['min-pixels'],
      maxPixels: args['max-pixels'],
      maxImagePixels: args['max-image-pixels'],
      captureAttention: !!args['attention-map'],
    });
    bar?.stop();
    if (r.prefill.prefillChunk < r.prompt_tokens) log().info({ prompt_tokens: r.prompt_tokens, prefill_chunk: r.prefill.prefillChunk }, 'chunked prefill');
    if (args['attention-map']) {
      if (!r.image) throw new UserError('--attention-map needs --image');
      if (r.attention.length === 0) {
        log().warn('no latent step ran (the model never emitted <|lvr_start|>): no attention map written');
      } else {
        await writeAttentionMap(args['attention-map'], {
          rgb: r.image.rgb,
          width: r.image.resized.width,
          height: r.image.resized.height,
          gridH: r.image.grid[1] / 2,
          gridW: r.image.grid[2] / 2,
          maps: r.attention,
        });
        log().info({ file: args['attention-map'], panels: r.attention.length }, 'attention map written');
      }
    }
    if (args.json) {
      const out = {
        text: r.text,
        token_ids: r.token_ids,
        prompt_tokens: r.prompt_tokens,
        latent_steps: r.latent_steps,
        timings: { load_ms: engine.loadMs, ...r.timings },
      };
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      process.stdout.write(r.text + '\n');
    }
  },
};
