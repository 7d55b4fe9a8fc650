// checkpoint-N folders under the output dir: listing, and keeping only the newest `limit` (save_total_limit).
import * as fs from 'fs';
import * as path from 'path';

export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs
    .readdirSync(outputDir)
    .map((name) => ({ name, m: /^checkpoint-(\d+)$/.exec(name) }))
    .filter((e) => e.m && fs.statSync(path.join(outputDir, e.name)).isDirectory())
    .map((e) => ({ step: Number(e.m![1]), dir: path.join(outputDir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/** Deletes the oldest checkpoint-N folders beyond `limit` (0 or less: keep all). Returns the removed folders. */
export function rotateCheckpoints(outputDir: string, limit: number): string[] {
  if (!(limit > 0)) return [];
  const all = listCheckpoints(outputDir);
  const removed = all.slice(0, Math.max(0, all.length - limit)).map((c) => c.dir);
  for (const dir of removed) fs.rmSync(dir, { recursive: true, force: true });
  return removed;
}

/** The newest complete checkpoint (it has trainer_state.json, written last), for --resume. */
export function latestCheckpoint(outputDir: string): string | undefined {
  const all = listCheckpoints(outputDir).filter((c) => fs.existsSync(path.join(c.dir, 'trainer_state.json')));
  return all.length ? all[all.length - 1].dir : undefined;
}
