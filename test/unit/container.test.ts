/**
 * The container's health check, run as Docker runs it: the command from the Dockerfile, with the container's
 * environment, against a server on the port that environment names.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const dockerfile = await readFile(path.join(import.meta.dirname, '../../Dockerfile'), 'utf8');

/** The exec-form command of the HEALTHCHECK instruction. */
function healthCheckCommand(): string[] {
  const match = /^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile);
  if (!match?.[1]) throw new Error('no HEALTHCHECK CMD [...] in the Dockerfile');
  return JSON.parse(match[1]) as string[];
}

function runHealthCheck(env: NodeJS.ProcessEnv): Promise<number | null> {
  const [, ...args] = healthCheckCommand();
  return new Promise((resolve) => {
    spawn(process.execPath, args, { env, stdio: 'ignore' }).on('close', resolve);
  });
}

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((request, response) => {
    response.writeHead(request.url === '/.well-known/openid-configuration' ? 200 : 404).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe('Dockerfile HEALTHCHECK', () => {
  test('asks the port the server listens on (PORT), not always 3000', async () => {
    expect(await runHealthCheck({ PORT: String(port) })).toBe(0);
  });

  test('reports unhealthy when nothing answers there', async () => {
    server.closeAllConnections();
    const nobody = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    expect(await runHealthCheck({ PORT: String(nobody) })).toBe(1);
  });
});
