/**
 * bcrypt ceiling: WORKERS processes, each keeping THREADS compares in flight on libuv's pool (as a server worker
 * does during sign-ins) for SECONDS seconds at COST. Prints one JSON line: { compares, seconds, perSecond }.
 */
import cluster from 'node:cluster';
import bcrypt from 'bcrypt';
import { envNumber } from './cluster.js';

const workers = envNumber('WORKERS', 1);
const threads = envNumber('THREADS', 4);
const seconds = envNumber('SECONDS', 5);
const cost = envNumber('COST', 12);

async function worker(): Promise<number> {
  const hash = await bcrypt.hash('correct horse battery staple', cost);
  const until = performance.now() + seconds * 1000;
  let compares = 0;
  const lane = async () => {
    while (performance.now() < until) {
      if (!(await bcrypt.compare('correct horse battery staple', hash))) throw new Error('bcrypt mismatch');
      compares++;
    }
  };
  await Promise.all(Array.from({ length: threads }, lane));
  return compares;
}

if (cluster.isPrimary) {
  const started = performance.now();
  let total = 0;
  let finished = 0;
  for (let index = 0; index < workers; index++) {
    const child = cluster.fork();
    child.on('message', (message: { compares: number }) => {
      total += message.compares;
      if (++finished === workers) {
        const elapsed = (performance.now() - started) / 1000;
        process.stdout.write(`${JSON.stringify({ compares: total, seconds: elapsed, perSecond: total / seconds })}\n`);
        process.exit(0);
      }
    });
  }
} else {
  worker().then(
    (compares) => process.send?.({ compares }),
    (error) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
