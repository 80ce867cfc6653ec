/**
 * A user-facing error: bad input (a file, a field, a flag) or an unusable environment.
 * The CLI prints `message` alone (no stack) and exits with status 2; anything else is a bug and
 * keeps its stack.
 */
export class TopoprobeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TopoprobeError';
  }
}

/** Throws a TopoprobeError when `cond` is false. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new TopoprobeError(typeof message === 'function' ? message() : message);
}
