// The engine behind `vreflect eval`: implements src/eval/generator.ts's EvalGenerator with the inference Engine.
// Images go through upstream's two resizes (qwen-vl-utils limits, then the processor's) unless singleResize;
// problems of one item (an unreadable image, a prompt over the context) become EvalItemError, so the item is
// recorded as an error and the run goes on.
import type { EvalGenerateRequest, EvalGenerator, GeneratorFactory, GeneratorSpec } from '../eval/generator';
import { EvalItemError } from '../eval/generator';
import { UserError } from '../util/errors';
import { log } from '../util/log';
import { Engine } from './engine';

export class EngineEvalGenerator implements EvalGenerator {
  constructor(private readonly engine: Engine) {}

  async generate(req: EvalGenerateRequest): Promise<{ text: string }> {
    try {
      const r = await this.engine.run({
        images: req.images,
        prompt: req.prompt,
        preResize: req.singleResize ? undefined : { minPixels: req.minPixels, maxPixels: req.maxPixels },
        minPixels: req.processorMinPixels,
        maxPixels: req.processorMaxPixels,
        latentSteps: req.latentSteps ?? 0, // null: the base model's plain decoding
        maxNewTokens: req.maxNewTokens,
      });
      return { text: r.text };
    } catch (e) {
      // UserError: this item's input is bad (image, prompt length); anything else is an engine failure.
      if (e instanceof UserError) throw new EvalItemError(e.message);
      throw e;
    }
  }
}

export const engineGeneratorFactory: GeneratorFactory = async (spec: GeneratorSpec) => {
  // spec.device is resolved by `vreflect eval`'s pre-flight (evalDevicePreflight); 'auto' here means the CPU.
  const device = spec.device === 'cuda' ? 'cuda' : 'cpu';
  const engine = await Engine.load(spec.model, { dtype: spec.dtype, threads: spec.threads, device, prefillChunk: spec.prefillChunk });
  log().info({ model: engine.dir, dtype: engine.dtype, device: engine.deviceName, load_ms: engine.loadMs, base_model: spec.baseModel }, 'model loaded');
  return new EngineEvalGenerator(engine);
};
