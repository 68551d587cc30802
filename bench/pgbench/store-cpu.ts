/** Prints the stores' CPU seconds so far, as the benchmark counts them (bench/lib/processes.ts), for rotation.sh. */
import { storeCpuSeconds } from '../lib/processes.js';

process.stdout.write(`${storeCpuSeconds()}\n`);
