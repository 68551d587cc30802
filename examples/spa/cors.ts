/**
 * CORS for one origin in front of an API (what a gateway would add): lets the SPA's origin call the example API
 * with an Authorization header and read `WWW-Authenticate`, without changing the API itself.
 *
 *   ISSUER=http://localhost:3000 AUDIENCE=https://api.example.com SPA_ORIGIN=http://localhost:3002 PORT=4000 \
 *   npx tsx examples/spa/cors.ts
 */
import { type RequestListener, createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function withCors(origin: string, handler: RequestListener): RequestListener {
  return (req, res) => {
    res.setHeader('Vary', 'Origin');
    if (req.headers.origin === origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'WWW-Authenticate');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
        res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
        res.setHeader('Access-Control-Max-Age', '600');
        res.writeHead(204).end();
        return;
      }
    }
    handler(req, res);
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { createResourceServer } = await import('../resource-server/src/app.js');
  const issuer = process.env.ISSUER || 'http://localhost:3000';
  const audience = process.env.AUDIENCE || 'https://api.example.com';
  const origin = process.env.SPA_ORIGIN || 'http://localhost:3002';
  const port = Number(process.env.PORT || 4000);
  const api = await createResourceServer({ issuer, audience });
  createServer(withCors(origin, api.callback())).listen(port, () => console.log(`example API with CORS for ${origin} on http://localhost:${port}`));
}
