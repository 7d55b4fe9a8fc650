// `--model` of vreflect plan / --device cuda: a preset name, else a checkpoint directory, else a one-line error.
import * as path from 'path';

import { planModel } from '../../../src/plan/model_source';
import { PRESETS } from '../../../src/plan/model_shape';
import { UserError } from '../../../src/util/errors';

test('presets by name, case-insensitive', () => {
  expect(planModel('7B').shape).toBe(PRESETS['7b']);
  expect(planModel('3b').shape.text.hidden).toBe(2048);
});

test('a checkpoint directory: its config and processor limits', () => {
  const m = planModel(path.join(__dirname, '..', '..', 'golden', 'models', 'tiny-flat'));
  expect(m.shape.name).toBe('tiny-flat');
  expect(m.shape.text.hidden).toBe(64);
});

test.each(['constructor', 'toString', '__proto__', '/no/such/dir'])('"%s" is neither a preset nor a directory', (spec) => {
  expect(() => planModel(spec)).toThrow(UserError);
  expect(() => planModel(spec)).toThrow(/is neither a checkpoint directory nor a preset \(7b, 3b\)$/);
});
