// EngineEvalGenerator turns an eval request into an engine request: the first resize (qwen-vl-utils limits)
// unless singleResize, the processor limits only when overridden, and per-item input problems become
// EvalItemError (the item is recorded as an error, the run goes on).
import { EvalItemError, EvalGenerateRequest } from '../../../src/eval/generator';
import type { Engine, RunRequest } from '../../../src/infer/engine';
import { EngineEvalGenerator } from '../../../src/infer/eval_generator';
import { UserError } from '../../../src/util/errors';

function fakeEngine(run: (req: RunRequest) => unknown): Engine {
  return { run: async (req: RunRequest) => run(req) } as unknown as Engine;
}

const base: EvalGenerateRequest = {
  images: [{ path: '/x.jpg' }] as any,
  prompt: 'Q',
  minPixels: 3136,
  maxPixels: 12845056,
  singleResize: false,
  latentSteps: 8,
  maxNewTokens: 64,
};

test('two resizes by default; processor limits from the checkpoint unless overridden', async () => {
  const seen: RunRequest[] = [];
  const gen = new EngineEvalGenerator(fakeEngine((r) => (seen.push(r), { text: 'A<|im_end|>' })));
  expect(await gen.generate(base)).toEqual({ text: 'A<|im_end|>' });
  await gen.generate({ ...base, singleResize: true, processorMaxPixels: 802816, latentSteps: null });
  expect(seen[0]).toMatchObject({ preResize: { minPixels: 3136, maxPixels: 12845056 }, minPixels: undefined, maxPixels: undefined, latentSteps: 8, maxNewTokens: 64 });
  expect(seen[1]).toMatchObject({ preResize: undefined, minPixels: undefined, maxPixels: 802816, latentSteps: 0 });
});

test('a bad input becomes an item error; an engine failure propagates', async () => {
  const bad = new EngineEvalGenerator(fakeEngine(() => { throw new UserError('image is corrupt: x.jpg'); }));
  await expect(bad.generate(base)).rejects.toBeInstanceOf(EvalItemError);
  const broken = new EngineEvalGenerator(fakeEngine(() => { throw new Error('native failure'); }));
  await expect(broken.generate(base)).rejects.toThrow('native failure');
});
