// The one integer-flag check the commands share, so every command words the refusal the same way.
import { UserError } from '../util/errors';

/** Throws a one-line UserError unless v is an integer in [min, max] (no upper bound when max is left out). */
export function requireIntArg(flag: string, v: number, min = 1, max?: number): void {
  if (Number.isInteger(v) && v >= min && (max === undefined || v <= max)) return;
  const range = max === undefined ? `>= ${min}` : `in [${min}, ${max}]`;
  throw new UserError(`${flag} must be an integer ${range}, got ${v}`);
}
