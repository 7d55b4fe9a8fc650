import { requireIntArg } from '../../../src/cli/int_arg';
import { UserError } from '../../../src/util/errors';

describe('requireIntArg', () => {
  it('accepts integers on both bounds', () => {
    expect(() => requireIntArg('--n', 1)).not.toThrow();
    expect(() => requireIntArg('--n', 0, 0, 100)).not.toThrow();
    expect(() => requireIntArg('--n', 100, 0, 100)).not.toThrow();
  });

  it.each([
    [0.5, 1, undefined, '--n must be an integer >= 1, got 0.5'],
    [0, 1, undefined, '--n must be an integer >= 1, got 0'],
    [783, 784, undefined, '--n must be an integer >= 784, got 783'],
    [NaN, 1, 16, '--n must be an integer in [1, 16], got NaN'],
    [17, 1, 16, '--n must be an integer in [1, 16], got 17'],
    [-1, 0, 100, '--n must be an integer in [0, 100], got -1'],
  ])('refuses %p (min %p, max %p) in one line', (v, min, max, msg) => {
    let err: unknown;
    try {
      requireIntArg('--n', v, min, max);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(msg);
  });
});
