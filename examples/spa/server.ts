/**
 * The tiny static server of the example single-page app: it serves the page, its script, its configuration
 * (config.json) and oidc-client-ts's browser bundle straight from node_modules. No build step.
 *
 *   ISSUER=http://localhost:3000 CLIENT_ID=... PORT=3002 API_URL=http://localhost:4000/messages \
 *   API_RESOURCE=https://api.example.com npx tsx examples/spa/server.ts
 */
import { readFile } from 'node:fs/promises';
import { type RequestListener, type Server, createServer } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SpaOptions {
  /** The authorization server's issuer identifier. */
  issuer: string;
  /** The SPA's client id (a public client: `clients add --type spa`). */
  clientId: string;
  /** The API endpoint "Call API" fetches; the API must allow this page's origin (CORS). */
  apiUrl: string;
  /** The API's resource indicator (its registered `aud`): access tokens are issued for it. */
  apiResource: string;
  /** Scopes of the API to ask for (default messages:read). */
  apiScope?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = path.join(path.dirname(createRequire(import.meta.url).resolve('oidc-client-ts/package.json')), 'dist/browser/oidc-client-ts.min.js');

export function createSpaHandler(options: SpaOptions): RequestListener {
  const config = JSON.stringify({
    issuer: options.issuer,
    clientId: options.clientId,
    apiUrl: options.apiUrl,
    apiResource: options.apiResource,
    apiScope: options.apiScope ?? 'messages:read',
  });
  const origin = (url: string) => new URL(url).origin;
  // Scripts only from here; the page talks to the authorization server and the API, nothing else.
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    `connect-src 'self' ${origin(options.issuer)} ${origin(options.apiUrl)}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
  ].join('; ');
  const file = (name: string) => () => readFile(path.join(here, 'public', name));
  const routes: Record<string, { type: string; body: () => Promise<Buffer | string> }> = {
    '/': { type: 'text/html; charset=utf-8', body: file('index.html') },
    '/callback.html': { type: 'text/html; charset=utf-8', body: file('index.html') },
    '/app.js': { type: 'text/javascript; charset=utf-8', body: file('app.js') },
    '/style.css': { type: 'text/css; charset=utf-8', body: file('style.css') },
    '/config.json': { type: 'application/json', body: async () => config },
    '/vendor/oidc-client-ts.min.js': { type: 'text/javascript; charset=utf-8', body: () => readFile(bundle) },
  };

  return (req, res) => {
    const route = routes[new URL(req.url ?? '/', 'http://localhost').pathname];
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // The callback URL carries the authorization code: never leak it in a Referer.
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-store');
    if (!route || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(route ? 405 : 404, { 'Content-Type': 'text/plain' }).end(route ? 'method not allowed' : 'not found');
      return;
    }
    route.body().then(
      (body) => res.writeHead(200, { 'Content-Type': route.type }).end(req.method === 'HEAD' ? undefined : body),
      () => res.writeHead(500, { 'Content-Type': 'text/plain' }).end('cannot read the file'),
    );
  };
}

/** Serves the SPA on `port` (0: any free port) of localhost. */
export async function createSpaServer(options: SpaOptions & { port: number }): Promise<Server> {
  const server = createServer(createSpaHandler(options));
  await new Promise<void>((resolve) => server.listen(options.port, 'localhost', resolve));
  return server;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const required = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`set ${name}`);
    return value;
  };
  const port = Number(process.env.PORT || 3002);
  await createSpaServer({
    issuer: process.env.ISSUER || 'http://localhost:3000',
    clientId: required('CLIENT_ID'),
    apiUrl: process.env.API_URL || 'http://localhost:4000/messages',
    apiResource: process.env.API_RESOURCE || 'https://api.example.com',
    port,
  });
  console.log(`example SPA on http://localhost:${port}`);
}
