/**
 * The exit status a command asks for when it completed without an error but should not report success
 * (an interrupted run: 130). `run` in main.ts resets it before a command and returns it after.
 */
let pending = 0;

export function setExitCode(code: number): void {
  pending = code;
}

/** The status asked for since the last call, reset to 0. */
export function takeExitCode(): number {
  const code = pending;
  pending = 0;
  return code;
}
