/**
 * Runs `start` in `workers` cluster workers sharing one port, the way the server does with WEB_CONCURRENCY.
 * The primary forwards SIGTERM/SIGINT to its workers and exits when they have.
 */
import cluster from 'node:cluster';

export function runCluster(workers: number, start: () => Promise<void>): void {
  if (!cluster.isPrimary || workers <= 1) {
    // Exit, rather than die of the signal, so that exit hooks run (e.g. --cpu-prof writing its profile).
    process.once('SIGTERM', () => process.exit(0));
    start().catch((error) => {
      process.stderr.write(`reference worker failed: ${String(error)}\n`);
      process.exit(1);
    });
    return;
  }
  for (let index = 0; index < workers; index++) cluster.fork();
  let stopping = false;
  cluster.on('exit', () => {
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

export const envNumber = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
