/**
 * A throwaway Redis Cluster for tests: three masters (redis-server --cluster-enabled) on free ports, the 16,384
 * slots split between them, joined with CLUSTER MEET. Nothing is persisted; `stop()` kills the nodes and removes
 * their folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort, waitFor } from './process.js';

const SLOTS = 16_384;

export interface TestRedisCluster {
  /** `127.0.0.1:port,…`, as REDIS_CLUSTER_NODES takes it. */
  nodes: string;
  ports: number[];
  /** A client of the whole cluster (closed by stop()). */
  client: Cluster;
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'authz-cluster-'));
  const ports: number[] = [];
  const processes: ChildProcess[] = [];
  const direct: Redis[] = [];
  const stop = async () => {
    for (const connection of direct) connection.disconnect();
    for (const child of processes) child.kill('SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < masters; index++) {
      const port = await freePort();
      ports.push(port);
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', scratch, '--save', '', '--appendonly', 'no'];
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000');
      processes.push(spawn('redis-server', args, { stdio: 'ignore' }));
    }
    for (const port of ports) direct.push(await connectWhenUp(port));
    // Contiguous slot ranges, one per master; then every node meets the first.
    await Promise.all(
      direct.map((node, index) => {
        const first = Math.floor((SLOTS * index) / masters);
        const last = Math.floor((SLOTS * (index + 1)) / masters) - 1;
        return node.call('CLUSTER', 'ADDSLOTSRANGE', first, last);
      }),
    );
    for (const port of ports.slice(1)) await direct[0]?.call('CLUSTER', 'MEET', '127.0.0.1', port);
    await waitFor(async () => {
      const states = await Promise.all(direct.map((node) => node.call('CLUSTER', 'INFO') as Promise<string>));
      return states.every((info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}`));
    }, 'the Redis Cluster to come up');
  } catch (error) {
    await stop();
    throw error;
  }
  const client = new Cluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    { redisOptions: { maxRetriesPerRequest: 2 } },
  );
  return {
    nodes: ports.map((port) => `127.0.0.1:${port}`).join(','),
    ports,
    client,
    async stop() {
      client.disconnect();
      await stop();
    },
  };
}

async function connectWhenUp(port: number): Promise<Redis> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    const connection = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await connection.connect();
      await connection.ping();
      return connection;
    } catch (error) {
      lastError = error;
      connection.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`redis-server on port ${port} did not start: ${String(lastError)}`);
}
