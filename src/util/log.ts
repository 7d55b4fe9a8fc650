// Logging: pino to stderr (stdout is for results). Pretty, human lines on a TTY; NDJSON otherwise.
import pino from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

let logger: pino.Logger = makeLogger('info');

function makeLogger(level: LogLevel): pino.Logger {
  if (process.stderr.isTTY && !process.env.VREFLECT_LOG_JSON) {
    // pino-pretty as a synchronous stream keeps ordering with progress bars and needs no worker thread.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pretty = require('pino-pretty');
    return pino({ level }, pretty({ destination: 2, colorize: true, ignore: 'pid,hostname', sync: true }));
  }
  return pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
}

export function setLogLevel(level: LogLevel): void {
  logger = makeLogger(level);
}

export function log(): pino.Logger {
  return logger;
}
