// Byte sizes on the command line and in reports. "80GB" is decimal (80e9), "80GiB" binary (80 x 2^30): GPU
// vendors sell "80 GB" cards that hold 79.6 GiB, so the difference matters when a plan is tight.
import { UserError } from '../util/errors';

const UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "80GB", "79.6 GiB", "81559MiB", "85899345920" -> bytes; throws a UserError naming `flag`. */
export function parseBytes(text: string, flag: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(String(text));
  const unit = m ? (m[2] || 'b').toLowerCase() : '';
  if (!m || !(unit in UNITS)) throw new UserError(`${flag}: "${text}" is not a size (e.g. 80GB, 79.6GiB, 81559MiB)`);
  const v = Number(m[1]) * UNITS[unit];
  if (!(v > 0) || !Number.isFinite(v)) throw new UserError(`${flag}: "${text}" must be a positive size`);
  return Math.round(v);
}

export const GiB = 2 ** 30;
export const MiB = 2 ** 20;

/** Bytes as GiB with 2 decimals ("42.91 GiB"); small values in MiB. */
export function formatBytes(b: number): string {
  if (Math.abs(b) < GiB / 10) return `${(b / MiB).toFixed(1)} MiB`;
  return `${(b / GiB).toFixed(2)} GiB`;
}
