/** What every command shares: starting the tensor backend from the global flags. */
import { initBackend, parseBackendChoice, type BackendInfo } from '../backend/index.js';
import { check } from '../util/errors.js';

export interface BackendArgs {
  backend?: string;
  threads?: number;
}

/** Initialises the backend named by --backend (or TOPOPROBE_BACKEND), with --threads for native kernels. */
export async function startBackend(args: BackendArgs): Promise<BackendInfo> {
  if (args.threads !== undefined) {
    check(Number.isInteger(args.threads) && args.threads > 0, `--threads must be a positive integer (got ${args.threads})`);
  }
  const choice = args.backend !== undefined ? parseBackendChoice(args.backend, '--backend') : undefined;
  return initBackend(choice, { threads: args.threads });
}
