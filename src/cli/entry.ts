/** The process entry point of the CLI (bin/topoprobe.js runs the compiled copy; sweeps spawn it for each run). */
import { run } from './main.js';

process.exitCode = await run(process.argv.slice(2));
