/**
 * Process entry: read the configuration, build the server, listen, and shut down cleanly on SIGTERM/SIGINT.
 * With WEB_CONCURRENCY > 1 the primary process only forks that many workers (node:cluster), which share the port.
 */
import cluster from 'node:cluster';
import { createServer as createHttpServer } from 'node:http';
import { createServer, listen } from './app.js';
import { ConfigError, type Config, loadConfig } from './config.js';
import { describeUnreachable, isStoreOutage } from './store/outages.js';
import { InputError } from './errors.js';
import { KeyFileError } from './keys/signing-keys.js';
import { createLogger, type Logger } from './logger.js';
import { closeConnectionsAfterResponses, drainAndClose } from './http/graceful-shutdown.js';
import { closeDatabase, migrate, openDatabase } from './store/database.js';
import { startMemoryTrim } from './memory-trim.js';
import { answerMetricsRequests, workerMetricsCollector } from './metrics/cluster-metrics.js';
import { METRICS_UNAUTHORIZED, metricsTokenPresented } from './metrics/metrics-access.js';
import { workerEnvironment, workerExecArgv } from './worker-runtime.js';

function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`authz: refusing to start, ${error.problems.length} problem(s):\n`);
    for (const problem of error.problems) process.stderr.write(`  - ${problem}\n`);
    process.exit(1);
  }
}

/** Where the server is and what it runs on, for the line or banner that says it has started. */
function startupFacts(config: Config) {
  return {
    issuer: config.issuer,
    discovery: `${config.issuer}/.well-known/openid-configuration`,
    database: config.database.url ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.database.embeddedDir}`,
    sessions: config.redis ? 'Redis (REDIS_URL)' : 'the same SQL database',
    keys: config.keys.dir,
  };
}

function startupBanner(config: Config): string {
  const facts = startupFacts(config);
  const lines = [
    `authz is serving ${facts.issuer}`,
    `  discovery:   ${facts.discovery}`,
    `  database:    ${facts.database}`,
    `  sessions:    ${facts.sessions}`,
    `  keys:        ${facts.keys}`,
  ];
  if (!config.production) {
    lines.push(
      '',
      config.database.url
        ? 'First steps (in another terminal):'
        : 'First steps (stop the server first: the embedded database admits one process at a time):',
      '  npm run authz -- users add --email you@example.com --name "You" --roles admin',
      '  npm run authz -- clients add --type web --name "My app" --redirect-uri http://localhost:8080/callback --first-party',
      '  npm run authz -- apis add --indicator https://api.example.test --name "My API" --scopes read,write --default',
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Production's stdout is read by a log shipper one JSON line at a time, so there the start is one more JSON line;
 * a person starting it in development gets the banner with the first steps. The line is written whatever
 * LOG_LEVEL says short of `silent`, as the banner always was: it is how a supervisor sees that the server is up.
 */
function announceServing(config: Config, logger: Logger): void {
  if (!config.production) {
    process.stdout.write(startupBanner(config));
    return;
  }
  const announcer = logger.level === 'silent' ? logger : logger.child({}, { level: 'info' });
  announcer.info(startupFacts(config), `authz is serving ${config.issuer}`);
}

/** After SHUTDOWN_DELAY: how long requests in flight may take, then closing the stores and the audit log. */
const SHUTDOWN_LIMITS = { inFlightLimitMs: 10_000, closeLimitMs: 10_000 };

/** The longest wait before replacing a worker that died again before it could serve. */
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * Forks the workers and replaces any that die unexpectedly; forwards SIGTERM/SIGINT/SIGHUP to them. A worker that
 * dies before any worker has served (a bad key file, a port in use) would die the same way in every replacement,
 * so then the server stops with code 1, after the worker's own message. Later, a replacement that dies before it
 * serves is started again after a growing pause, up to 30 s, while the others keep serving. Once stopping, the
 * instance exits 0 only if every worker closed cleanly.
 */
function superviseWorkers(count: number): void {
  let stopping = false;
  let exitCode = 0;
  let served = false;
  let restartDelayMs = 0;
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  const environment = workerEnvironment(process.env);
  const fork = () => cluster.fork(environment);
  const stopAll = (signal: NodeJS.Signals) => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  for (let index = 0; index < count; index++) fork();
  cluster.on('listening', () => {
    served = true;
    restartDelayMs = 0;
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping && !served) {
      process.stderr.write(`authz: a worker exited before the server could start (${signal ?? code}); stopping\n`);
      stopping = true;
      exitCode = 1;
      stopAll('SIGTERM');
    }
    if (stopping) {
      // A worker that did not drain and close cleanly may have lost what it held (audit events not yet written):
      // the instance's exit code says so to whatever supervises it.
      if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    const delay = restartDelayMs;
    restartDelayMs = Math.min(Math.max(1000, restartDelayMs * 2), MAX_RESTART_DELAY_MS);
    const when = delay > 0 ? ` in ${delay / 1000} s` : '';
    process.stderr.write(`authz: worker ${worker.process.pid} exited (${signal ?? code}); starting another${when}\n`);
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });
  const forward = (signal: NodeJS.Signals) => () => {
    if (signal !== 'SIGHUP') stopping = true;
    stopAll(signal);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, forward(signal));
}

/** /metrics on METRICS_PORT, apart from the public port (so it need not be exposed to the internet). */
function serveMetrics(config: Config, render: () => Promise<string>, contentType: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createHttpServer((request, response) => {
      if (request.url !== '/metrics') {
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
        return;
      }
      if (config.metricsToken && !metricsTokenPresented(request.headers.authorization, config.metricsToken)) {
        response.writeHead(METRICS_UNAUTHORIZED.status, METRICS_UNAUTHORIZED.headers).end(METRICS_UNAUTHORIZED.body);
        return;
      }
      render().then(
        (text) => response.writeHead(200, { 'content-type': contentType }).end(text),
        (error: Error) =>
          response
            .writeHead(503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: 'metrics_unavailable', error_description: error.message })),
      );
    });
    server.once('error', reject);
    server.listen(config.metricsPort, config.host, () => {
      server.unref();
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  if (cluster.isPrimary && config.workers > 1) {
    // Migrate once, before the workers race to.
    const db = await openDatabase(config.database, createLogger(config.logLevel, config.production));
    await migrate(db).finally(() => closeDatabase(db));
    // Before the forks, so that it sees every worker start listening.
    const collector = config.metricsPort ? workerMetricsCollector() : undefined;
    superviseWorkers(config.workers);
    if (collector) await serveMetrics(config, collector.render, collector.contentType);
    return;
  }
  const logger = createLogger(config.logLevel, config.production);
  if (cluster.isPrimary) for (const notice of config.notices) logger.warn(notice);
  let authz: Awaited<ReturnType<typeof createServer>>;
  try {
    authz = await createServer(config, logger);
  } catch (error) {
    if (error instanceof KeyFileError || error instanceof ConfigError || error instanceof InputError) {
      process.stderr.write(`authz: refusing to start: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  // Before listening: the primary asks a worker for its metrics once it listens.
  if (cluster.isWorker && config.metricsPort) answerMetricsRequests(authz.metrics.registry);
  const server = await listen(authz.handleRequest, config.port, config.host);
  const stopMemoryTrim = await startMemoryTrim(config.memoryTrimIntervalSeconds, logger);
  // With workers, the primary serves the metrics of all of them (below); a single process serves its own.
  if (config.metricsPort && cluster.isPrimary) await serveMetrics(config, () => authz.metrics.registry.metrics(), authz.metrics.registry.contentType);

  let delay: NodeJS.Timeout | undefined;
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    clearTimeout(delay);
    // No new connections; requests in flight finish (bounded), then the audit log is flushed and pools close.
    void drainAndClose(server, () => authz.close(), logger, SHUTDOWN_LIMITS).then((code) => process.exit(code));
  };
  const stop = (signal: string) => {
    if (delay) {
      // A second Ctrl-C (or SIGTERM) from someone who will not wait out SHUTDOWN_DELAY: close now, still cleanly.
      logger.info({ signal }, 'closing now, without waiting for the rest of the shutdown delay');
      return close();
    }
    logger.info({ signal, drainSeconds: config.shutdownDelaySeconds }, 'shutting down');
    authz.beginShutdown(); // /readyz now answers 503: the load balancer stops sending new requests
    closeConnectionsAfterResponses(server); // and stops reusing the connections it has
    stopMemoryTrim();
    delay = setTimeout(close, config.shutdownDelaySeconds * 1000);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Announced last, once a SIGTERM would be handled: a supervisor (or a test) that stops the server as soon as it
  // reads this line otherwise killed it before its handler was set, without draining (exit by signal, not 0).
  // With workers, the first one speaks for all.
  if (cluster.isPrimary || cluster.worker?.id === 1) announceServing(config, logger);
}

/** What the operator reads when start-up fails: the cause in their terms, and what to check. */
function describeStartFailure(error: unknown): string {
  if (isStoreOutage(error)) return describeUnreachable(error);
  const { code, address, port } = error as { code?: string; address?: string; port?: number };
  const variable = port !== undefined && String(port) === process.env.METRICS_PORT ? 'METRICS_PORT' : 'PORT';
  if (code === 'EADDRINUSE') return `port ${port} (${address}) is already in use: stop what listens there, or set ${variable}`;
  if (code === 'EACCES' && port !== undefined) return `not allowed to listen on port ${port}: use one above 1023, or set ${variable}`;
  return error instanceof Error ? error.message : String(error);
}

main().catch((error) => {
  process.stderr.write(`authz: failed to start: ${describeStartFailure(error)}\n`);
  process.exit(1);
});
