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

export function createLogger(level: string, production: boolean): Logger {
  const pretty = !production && process.stdout.isTTY;
  return pino({
    level,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } : undefined,
  });
}
