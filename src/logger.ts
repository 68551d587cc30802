/**
 * Structured logging (pino). JSON in production, pretty in a terminal during development. Known secret-bearing
 * fields are redacted wherever they appear, as a second line of defence behind never logging them at all.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const redactedPaths = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'client_secret',
  '*.client_secret',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/** `destination` replaces stdout (tests read what would be logged). */
export function createLogger(level: string, production: boolean, destination?: NodeJS.WritableStream): Logger {
  const pretty = !production && !destination && process.stdout.isTTY;
  const options = {
    level,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } : undefined,
  };
  if (destination) return pino(options, destination);
  if (pretty) return pino(options);
  // Asynchronous: lines logged while a write is in flight go out together in the next one, instead of one
  // blocking write(2) per line on the request path. pino flushes what is buffered when the process exits, and
  // `fatal` flushes at once.
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

const accessLoggers = new WeakMap<Logger, Logger>();

/**
 * The logger for the one access-log line per request: the same level and output as `logger`, without the
 * redaction pass, whose wildcard paths cost about 3 % of a small request's CPU (discovery, profiled). Only for
 * lines whose fields are fixed and hold no secret (src/http/request-context.ts).
 */
export function accessLoggerOf(logger: Logger): Logger {
  let access = accessLoggers.get(logger);
  if (!access) {
    const stream = (logger as unknown as Record<symbol, NodeJS.WritableStream>)[pino.symbols.streamSym];
    access = pino({ level: logger.level }, stream);
    accessLoggers.set(logger, access);
  }
  return access;
}
