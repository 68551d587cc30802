/**
 * The example resource server's token checks, with an issuer the test controls: a tiny server publishes the
 * metadata and JWKS of a key made here, so the test can mint tokens the API should trust (and expired,
 * foreign-audience, foreign-key, wrong-type ones it must refuse), which the real server would never issue.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, type JWTPayload, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createResourceServer } from '../../examples/resource-server/src/app.js';

const AUDIENCE = 'https://api.example.test';
const KID = 'test-key';

let issuerServer: Server;
let apiServer: Server;
let issuer: string;
let apiUrl: string;
let trustedKey: CryptoKey;
let unknownKey: CryptoKey;

const listen = async (http: Server) => {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  const trusted = await generateKeyPair('RS256');
  trustedKey = trusted.privateKey;
  unknownKey = (await generateKeyPair('RS256')).privateKey;
  const jwks = { keys: [{ ...(await exportJWK(trusted.publicKey)), kid: KID, alg: 'RS256', use: 'sig' }] };
  issuerServer = createServer((req, res) => {
    const body =
      req.url === '/.well-known/oauth-authorization-server' ? { issuer, jwks_uri: `${issuer}/jwks` } : req.url === '/jwks' ? jwks : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  issuer = await listen(issuerServer);
  const app = await createResourceServer({ issuer, audience: AUDIENCE });
  apiServer = createServer(app.callback());
  apiUrl = await listen(apiServer);
});

afterAll(async () => {
  for (const http of [apiServer, issuerServer]) {
    http?.closeAllConnections();
    await new Promise((resolve) => http?.close(resolve));
  }
});

const now = () => Math.floor(Date.now() / 1000);

function mint(claims: JWTPayload = {}, options: { key?: CryptoKey; typ?: string; kid?: string } = {}) {
  return new SignJWT({ iss: issuer, aud: AUDIENCE, sub: 'user-1', client_id: 'app', scope: 'messages:read', iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: 'RS256', typ: options.typ ?? 'at+jwt', kid: options.kid ?? KID })
    .sign(options.key ?? trustedKey);
}

async function call(token: string | undefined, path = '/messages') {
  const response = await fetch(`${apiUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '' };
}

describe('examples/resource-server token checks', () => {
  test('a valid token of the trusted issuer is accepted', async () => {
    await expect(call(await mint())).resolves.toEqual({ status: 200, challenge: '' });
  });

  test.each([
    ['expired', () => mint({ iat: now() - 600, exp: now() - 120 }), /'exp' claim/],
    ['not yet valid', () => mint({ nbf: now() + 600 }), /'nbf' claim/],
    ['for another API', () => mint({ aud: 'https://reports.example.test' }), /'aud' claim/],
    ['from another issuer', () => mint({ iss: 'https://evil.example.test' }), /'iss' claim/],
    ['signed by an unknown key', () => mint({}, { key: unknownKey }), /signature/],
    ['signed by an unknown key under an unknown kid', () => mint({}, { key: unknownKey, kid: 'other' }), /key|JWKS/i],
    ['an ID token (typ JWT, not at+jwt)', () => mint({}, { typ: 'JWT' }), /'typ'/],
    ['bound to a DPoP key, which it does not check', () => mint({ cnf: { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' } }), /bound to a DPoP key/],
    ['bound to a client certificate, with no certificate header configured', () => mint({ cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }), /bound to a client certificate/],
  ])('a token %s is refused with 401 invalid_token', async (_name, make, reason) => {
    const { status, challenge } = await call(await make());
    expect(status).toBe(401);
    expect(challenge).toMatch(/^Bearer error="invalid_token"/);
    expect(challenge).toMatch(reason);
  });

  test('no token is 401 invalid_request; a valid token without the scope or role is 403 insufficient_scope', async () => {
    const missing = await call(undefined);
    expect(missing.status).toBe(401);
    expect(missing.challenge).toMatch(/error="invalid_request"/);

    const noScope = await call(await mint({ scope: 'reports:read' }));
    expect(noScope.status).toBe(403);
    expect(noScope.challenge).toMatch(/error="insufficient_scope".*scope="messages:read"/);

    expect((await call(await mint({ roles: ['reader'] }), '/admin')).status).toBe(403);
    expect((await call(await mint({ roles: ['admin'] }), '/admin')).status).toBe(200);
  });
});
