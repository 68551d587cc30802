/**
 * `authz doctor <issuer-url>`: a self-test of a live deployment, over HTTP only (never its database), fit to
 * gate a deploy: one `PASS|WARN|FAIL  check  reason` line per check (or `--json`), exit 1 if anything failed.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { type CheckResult, runDoctor, summarize } from '../doctor/checks.js';
import type { CliContext } from './context.js';
import { InputError } from '../errors.js';
import { printJson } from './output.js';

function issuerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL (e.g. https://auth.example.com)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidArgumentError(`"${value}" is not an http(s) URL`);
  if (url.search || url.hash || url.username || url.password) {
    throw new InvalidArgumentError(`"${value}" has a query, fragment or credentials; an issuer has none`);
  }
  return value;
}

function printLines(results: CheckResult[]): void {
  const width = Math.max(...results.map((result) => result.check.length));
  const lines = results.map((result) => `${result.status}  ${result.check.padEnd(width)}  ${result.reason}`);
  const { passed, warnings, failed } = summarize(results);
  process.stdout.write(`${[...lines, `${passed} passed, ${warnings} warnings, ${failed} failed`].join('\n')}\n`);
}

export function registerDoctorCommand(program: Command, _context: CliContext): void {
  program
    .command('doctor')
    .description('self-test a live deployment over HTTP: discovery, https, headers, keys, clock, a client-credentials token')
    .argument('<issuer-url>', 'the issuer exactly as clients are configured with it', issuerUrl)
    .option('--production', 'check the production headers (HSTS, CSP, JWKS caching) even on an http issuer')
    .option('--client-id <id>', 'a service client to request a token with (or DOCTOR_CLIENT_ID)')
    .option('--client-secret <secret>', 'its secret (or DOCTOR_CLIENT_SECRET)')
    .option('--resource <uri>', 'the API to request the token for (default: the default API)')
    .option('--json', 'print JSON')
    .action(async (issuer: string, options, command: Command) => {
      const id: string | undefined = options.clientId ?? process.env.DOCTOR_CLIENT_ID;
      const secret: string | undefined = options.clientSecret ?? process.env.DOCTOR_CLIENT_SECRET;
      if (Boolean(id) !== Boolean(secret)) command.error('error: give both --client-id and --client-secret, or neither', { exitCode: 2 });
      const results = await runDoctor({
        issuer,
        production: Boolean(options.production),
        client: id && secret ? { id, secret } : undefined,
        resource: options.resource,
      });
      const summary = summarize(results);
      if (options.json) printJson({ issuer, results, summary });
      else printLines(results);
      if (summary.failed > 0) throw new InputError(`doctor: ${summary.failed} check${summary.failed === 1 ? '' : 's'} failed`);
    });
}
