// Errors meant for the user: the CLI prints only the message (one line) and exits non-zero.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** One line, whatever was thrown (engine errors arrive as plain Error objects). */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].trim() || 'unknown error';
}
