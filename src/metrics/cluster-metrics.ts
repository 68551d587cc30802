/**
 * METRICS_PORT with WEB_CONCURRENCY > 1: the primary asks each worker that serves for its metrics over the
 * cluster's IPC channel and sums them with prom-client's own aggregation (its `aggregator` per metric: counters
 * add up, the signing-key gauge takes the maximum).
 *
 * Not prom-client's `clusterMetrics()`: that asks every connected worker, including one still starting (a
 * replacement after a crash, or the second of two at start-up) which cannot answer yet, and then fails the whole
 * scrape after 5 s. Here only workers that are listening are asked; one that stays silent still fails the scrape,
 * since a sum without it would read as counters going backwards.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'authz:metrics-request';
const RESPONSE = 'authz:metrics-response';
const TIMEOUT_MS = 5000;

/** One worker's metrics as prom-client serializes them for aggregation. */
type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

type Request = { type: typeof REQUEST; id: number };
type Response = { type: typeof RESPONSE; id: number; metrics?: MetricJson[]; error?: string };

const isMessage = <T extends { type: string }>(message: unknown, type: T['type']): message is T =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

/** In the primary: the metrics of every serving worker, summed, in Prometheus' text format. */
export function workerMetricsCollector(): { render: () => Promise<string>; contentType: string } {
  const serving = new Set<Worker>();
  cluster.on('listening', (worker) => serving.add(worker));
  cluster.on('exit', (worker) => serving.delete(worker));
  let nextId = 0;

  const ask = (worker: Worker, id: number) =>
    new Promise<MetricJson[]>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`worker ${worker.process.pid} sent no metrics within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      const onMessage = (message: unknown) => {
        if (!isMessage<Response>(message, RESPONSE) || message.id !== id) return;
        finish(message.error === undefined ? undefined : new Error(message.error), message.metrics);
      };
      const onExit = () => finish(new Error(`worker ${worker.process.pid} exited while asked for its metrics`));
      function finish(error?: Error, metrics?: MetricJson[]) {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        if (error) reject(error);
        else resolve(metrics ?? []);
      }
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.send({ type: REQUEST, id } satisfies Request);
    });

  return {
    contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
    async render() {
      const id = nextId++;
      const workers = [...serving].filter((worker) => worker.isConnected());
      const perWorker = await Promise.all(workers.map((worker) => ask(worker, id)));
      return AggregatorRegistry.aggregate(perWorker).metrics();
    },
  };
}

/** In a worker: answers the primary's requests with this worker's metrics. */
export function answerMetricsRequests(registry: Registry): void {
  process.on('message', (message: unknown) => {
    if (!isMessage<Request>(message, REQUEST)) return;
    const reply = (response: Omit<Response, 'type' | 'id'>) => process.send?.({ type: RESPONSE, id: message.id, ...response });
    registry.getMetricsAsJSON().then(
      (metrics) => reply({ metrics }),
      (error: Error) => reply({ error: error.message }),
    );
  });
}
