// The training-benchmark model: parameter counts against published figures (model.md §2.3 layer sizes, method.md
// §6.1's BCM total, the 634,990,080 trainable parameters torch counted on the generated checkpoint), the special-
// token remapping, and config.json read back by the project's own config parser.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadModelConfig } from '../../../src/model/config';
import {
  bcmParameterCount, DEFAULT_TRAIN_SHAPE, remapTokenId, textIdLimit, trainConfigJson, trainParamCounts, trainSpecialIds, trainTensorSpecs,
} from '../../../src/bench/train_model';

describe('bench train model', () => {
  test('BCM has the 51,430,400 parameters of method.md §6.1', () => {
    expect(bcmParameterCount(8)).toBe(51_430_400);
  });

  test('parameter counts of the default 2+4-layer, 16k-vocabulary model', () => {
    const c = trainParamCounts(DEFAULT_TRAIN_SHAPE, 8);
    // model.md §2.3: a decoder layer has 233,057,792 parameters; 11,776 of them are biases (q, k, v) and norms.
    expect(c.layerGemm).toBe(2 * (233_057_792 - 3584 - 512 - 512 - 2 * 3584));
    expect(c.embedding).toBe(16384 * 3584);
    // What torch.nn counted on the same checkpoint (LLM + lm_head + BCM, requires_grad).
    expect(c.trainable).toBe(634_990_080);
    // The whole 4-block ViT and merger: patch embed 1,505,280 + 4 x 19,702,200 + merger 44,574,464 (model.md §2.3).
    expect(c.frozen).toBe(1_505_280 + 4 * 19_702_200 + 44_574_464);
  });

  test('only embed_tokens and lm_head shrink', () => {
    const byName = new Map(trainTensorSpecs(DEFAULT_TRAIN_SHAPE).map((t) => [t.name, t]));
    expect(byName.get('model.embed_tokens.weight')!.shape).toEqual([16384, 3584]);
    expect(byName.get('lm_head.weight')!.shape).toEqual([16384, 3584]);
    expect(byName.get('lm_head.weight')!.zeroRows).toBeUndefined();
    expect(byName.get('model.layers.1.mlp.up_proj.weight')!.shape).toEqual([18944, 3584]);
    expect(byName.has('model.layers.2.mlp.up_proj.weight')).toBe(false);
  });

  test('special tokens move to the top of the vocabulary as one block', () => {
    expect(remapTokenId(151643, 16384)).toBe(16352); // <|endoftext|>
    expect(remapTokenId(151655, 16384)).toBe(16364); // <|image_pad|>
    expect(remapTokenId(151668, 16384)).toBe(16377); // <|lvr_end|>
    expect(remapTokenId(1234, 16384)).toBe(1234);
    expect(textIdLimit(16384)).toBe(16352);
    expect(() => remapTokenId(16360, 16384)).toThrow(/no place/);
    const ids = trainSpecialIds(16384);
    expect([ids.lvrStart, ids.lvr, ids.lvrLatentEnd, ids.lvrEnd]).toEqual([16374, 16375, 16376, 16377]);
  });

  test('config.json parses with the project loader, ids inside the vocabulary', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-train-cfg-'));
    try {
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(trainConfigJson({ llmLayers: 1, vitLayers: 2, vocab: 4096 })));
      const cfg = loadModelConfig(dir);
      expect(cfg.text.vocab).toBe(4096);
      expect(cfg.text.layers).toBe(1);
      expect(cfg.vision.depth).toBe(2);
      expect(cfg.vision.fullattBlocks).toEqual([1]);
      expect(cfg.tokens.image).toBe(4096 - 32 + 12);
      expect(cfg.tokens.visionStart).toBe(4096 - 32 + 9);
      expect(cfg.lvr.lvr).toBe(4096 - 32 + 23);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad shapes are refused with the cause', () => {
    expect(() => trainConfigJson({ llmLayers: 0, vitLayers: 4, vocab: 16384 })).toThrow(/LLM layer count/);
    expect(() => trainConfigJson({ llmLayers: 2, vitLayers: 4, vocab: 200000 })).toThrow(/vocabulary size/);
  });
});
