// Progress for long work: a bar with ETA on a TTY (stderr), plain periodic log lines otherwise.
import { SingleBar, Presets } from 'cli-progress';

import { log } from './log';

export interface Progress {
  update(done: number, extra?: string): void;
  stop(): void;
}

export function startProgress(label: string, total: number, logEverySec = 30): Progress {
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      { format: `${label} [{bar}] {value}/{total} | ETA {eta_formatted} {extra}`, stream: process.stderr, hideCursor: true },
      Presets.shades_classic,
    );
    bar.start(total, 0, { extra: '' });
    return {
      update: (done, extra) => bar.update(done, { extra: extra ?? '' }),
      stop: () => bar.stop(),
    };
  }
  const t0 = Date.now();
  let last = 0;
  return {
    update(done, extra) {
      const now = Date.now();
      if (now - last < logEverySec * 1000 && done < total) return;
      last = now;
      const rate = done / Math.max(1e-3, (now - t0) / 1000);
      const eta = rate > 0 ? Math.round((total - done) / rate) : undefined;
      log().info({ done, total, eta_s: eta, extra }, label);
    },
    stop() {},
  };
}
