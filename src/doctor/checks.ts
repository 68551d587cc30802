/**
 * `authz doctor`: a self-test of a live deployment over HTTP only. Each check is one small function that
 * answers PASS, WARN or FAIL with a reason, or nothing when it does not apply (e.g. the https-only headers on a
 * local http issuer). Checks never throw: a network or protocol failure becomes a FAIL with a one-line reason.
 */
import { SIGNING_ALGS } from '../keys/signing-keys.js';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { type DoctorOptions, type Json, ProbeError, Site, TIMEOUT_MS, request } from './site.js';

export type Status = 'PASS' | 'WARN' | 'FAIL';

export interface CheckResult {
  check: string;
  status: Status;
  reason: string;
}

type Outcome = { status: Status; reason: string } | undefined;

const pass = (reason: string): Outcome => ({ status: 'PASS', reason });
const warn = (reason: string): Outcome => ({ status: 'WARN', reason });
const fail = (reason: string): Outcome => ({ status: 'FAIL', reason });

/** The endpoints a relying party reads from discovery; all must live on the issuer's origin. */
export const ENDPOINTS = [
  'authorization_endpoint',
  'token_endpoint',
  'jwks_uri',
  'userinfo_endpoint',
  'introspection_endpoint',
  'revocation_endpoint',
  'end_session_endpoint',
  'device_authorization_endpoint',
] as const;

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const CLOCK_WARN_SECONDS = 5;
const CLOCK_FAIL_SECONDS = 60;

const isHttps = (url: string) => new URL(url).protocol === 'https:';
/** The production headers are checked for https issuers, or on request (`--production`). */
const headersApply = (site: Site) => isHttps(site.issuer) || site.options.production;
const list = (items: string[]) => items.join(', ');
/** The algorithms this server signs with (src/keys/signing-keys.ts), in the order its messages name them (an unknown one last). */
const KNOWN_ALGS: readonly string[] = SIGNING_ALGS;
const rank = (alg: string) => (KNOWN_ALGS.includes(alg) ? KNOWN_ALGS.indexOf(alg) : KNOWN_ALGS.length);

// --- discovery -----------------------------------------------------------------------------------------------

async function discoveryAnswers(site: Site): Promise<Outcome> {
  const { response } = await site.discovery();
  return pass(`${response.url} answers 200 JSON`);
}

async function issuerMatches(site: Site): Promise<Outcome> {
  const { issuer } = (await site.discovery()).body;
  if (issuer === site.issuer) return pass(`discovery names ${site.issuer}`);
  return fail(
    `discovery names issuer ${JSON.stringify(issuer)}, not ${JSON.stringify(site.issuer)}: tokens carry that iss, so clients configured with this URL reject them (check ISSUER)`,
  );
}

async function endpointsOnOrigin(site: Site): Promise<Outcome> {
  const document = (await site.discovery()).body;
  const origin = new URL(site.issuer).origin;
  const missing = ENDPOINTS.filter((name) => typeof document[name] !== 'string');
  if (missing.length) return fail(`discovery has no ${list(missing)}`);
  const elsewhere = ENDPOINTS.filter((name) => new URL(document[name] as string).origin !== origin);
  if (elsewhere.length) return fail(`not under ${origin}: ${list(elsewhere.map((name) => `${name}=${document[name]}`))}`);
  return pass(`all ${ENDPOINTS.length} endpoints are under ${origin}`);
}

async function serverMetadataAgrees(site: Site): Promise<Outcome> {
  const openid = (await site.discovery()).body;
  const oauth = (await site.serverMetadata()).body;
  const differ = (['issuer', ...ENDPOINTS] as const).filter((name) => oauth[name] !== openid[name]);
  if (differ.length) return fail(`oauth-authorization-server and openid-configuration disagree on ${list(differ)}`);
  return pass('RFC 8414 metadata agrees with OpenID discovery on issuer and endpoints');
}

// --- transport -----------------------------------------------------------------------------------------------

async function httpsEverywhere(site: Site): Promise<Outcome> {
  const document = (await site.discovery()).body;
  const url = new URL(site.issuer);
  if (url.protocol === 'https:') {
    const plain = ENDPOINTS.filter((name) => typeof document[name] === 'string' && !isHttps(document[name] as string));
    if (plain.length) return fail(`the issuer is https but these are not: ${list(plain)}`);
    return pass('the issuer and every endpoint are https');
  }
  if (!LOOPBACK.has(url.hostname)) return fail(`${url.host} is served over http: production needs https`);
  if (site.options.production) return fail('--production, but the issuer is http: production needs https');
  return pass(`http on ${url.hostname} (local development only; production needs https)`);
}

async function strictTransportSecurity(site: Site): Promise<Outcome> {
  if (!headersApply(site)) return undefined;
  const { response } = await site.discovery();
  const page = await site.authorizeErrorPage();
  const value = response.headers.get('strict-transport-security') ?? page.headers.get('strict-transport-security');
  if (!value) return fail('no strict-transport-security header on discovery or the authorize error page (set NODE_ENV=production)');
  return pass(`strict-transport-security: ${value}`);
}

/** `a b; c d` → { a: ['b'], c: ['d'] } */
function parseCsp(header: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const part of header.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name && !directives.has(name.toLowerCase())) directives.set(name.toLowerCase(), values);
  }
  return directives;
}

async function contentSecurityPolicy(site: Site): Promise<Outcome> {
  if (!headersApply(site)) return undefined;
  const header = (await site.authorizeErrorPage()).headers.get('content-security-policy');
  if (!header) return fail('the authorize error page has no content-security-policy');
  const csp = parseCsp(header);
  const frameAncestors = csp.get('frame-ancestors') ?? [];
  if (frameAncestors.join(' ') !== "'none'") {
    return fail(`frame-ancestors is ${JSON.stringify(frameAncestors.join(' ') || 'missing')}, not 'none': the login page can be framed (clickjacking)`);
  }
  const scriptSrc = csp.get('script-src') ?? csp.get('default-src') ?? [];
  if (scriptSrc.includes("'unsafe-inline'")) return fail("script-src allows 'unsafe-inline': an injected script would run");
  return pass(`frame-ancestors 'none', script-src ${scriptSrc.join(' ') || '(unrestricted?)'}`);
}

/** /metrics on the public address: its labels name the clients and its counters tell how the server is used. */
async function metricsNotPublic(site: Site): Promise<Outcome> {
  if (!headersApply(site)) return undefined;
  const url = `${site.issuer.replace(/\/$/, '')}/metrics`;
  const response = await request(url);
  await response.body?.cancel();
  if (response.status === 404) return pass(`${url} is not served (METRICS_PORT, or no METRICS_TOKEN)`);
  if (response.status === 401) return pass(`${url} asks for a bearer token (METRICS_TOKEN)`);
  if (response.ok) return fail(`${url} answers anyone: its labels name your clients (set METRICS_TOKEN, or METRICS_PORT on a private network)`);
  return warn(`${url} answered ${response.status}`);
}

async function jwksCacheControl(site: Site): Promise<Outcome> {
  if (!headersApply(site)) return undefined;
  const value = (await site.jwks()).response.headers.get('cache-control');
  const maxAge = value?.match(/(?:^|[,\s])max-age=(\d+)/)?.[1];
  if (!value || maxAge === undefined) {
    return fail(`the JWKS has ${value ? `cache-control "${value}"` : 'no cache-control'} without max-age: relying parties cannot tell how long to cache keys`);
  }
  return pass(`the JWKS may be cached for ${maxAge} s`);
}

// --- keys ----------------------------------------------------------------------------------------------------

function rsaModulusBits(n: unknown): number {
  if (typeof n !== 'string') return 0;
  const bytes = Buffer.from(n, 'base64url');
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start += 1;
  const first = bytes[start];
  return first === undefined ? 0 : (bytes.length - start - 1) * 8 + first.toString(2).length;
}

async function publishedKeys(site: Site): Promise<Json[]> {
  const { keys } = (await site.jwks()).body;
  if (!Array.isArray(keys)) throw new ProbeError('the JWKS has no "keys" array');
  return keys.filter((key): key is Json => typeof key === 'object' && key !== null);
}

function keyProblems(key: Json): string[] {
  const name = typeof key.kid === 'string' ? key.kid : '(no kid)';
  const problems: string[] = [];
  const leaked = PRIVATE_MEMBERS.filter((member) => member in key);
  if (leaked.length) problems.push(`${name} PUBLISHES PRIVATE KEY MATERIAL (${list(leaked)}): rotate it now`);
  if (typeof key.kid !== 'string' || !key.kid) problems.push('a key has no kid');
  if (key.use !== 'sig') problems.push(`${name} has use ${JSON.stringify(key.use)}, not "sig"`);
  if (key.kty === 'RSA') {
    const bits = rsaModulusBits(key.n);
    if (bits < 2048) problems.push(`${name} is ${bits}-bit RSA, below 2048`);
    if (key.alg !== undefined && key.alg !== 'RS256' && key.alg !== 'PS256') problems.push(`${name} has alg ${JSON.stringify(key.alg)}, not RS256 or PS256`);
  }
  if (key.kty === 'EC' && (key.crv !== 'P-256' || (key.alg !== undefined && key.alg !== 'ES256'))) {
    problems.push(`${name} is an EC key on ${JSON.stringify(key.crv)} with alg ${JSON.stringify(key.alg)}, not ES256 on P-256`);
  }
  if (key.kty === 'OKP' && (key.crv !== 'Ed25519' || (key.alg !== undefined && key.alg !== 'EdDSA'))) {
    problems.push(`${name} is an OKP key on ${JSON.stringify(key.crv)} with alg ${JSON.stringify(key.alg)}, not EdDSA on Ed25519`);
  }
  return problems;
}

async function signingKeys(site: Site): Promise<Outcome> {
  const keys = await publishedKeys(site);
  if (!keys.some((key) => key.kty === 'RSA' && (key.alg ?? 'RS256') === 'RS256')) return fail(`the JWKS has ${keys.length} key(s) but no RSA key to verify RS256 tokens`);
  const problems = keys.flatMap(keyProblems);
  if (problems.length) return fail(problems.join('; '));
  const sizes = [...new Set(keys.filter((key) => key.kty === 'RSA').map((key) => rsaModulusBits(key.n)))];
  const others = KNOWN_ALGS.slice(1).map((alg) => [alg, keys.filter((key) => key.alg === alg).length] as const).filter(([, count]) => count > 0);
  const besides = others.length ? ` (${others.map(([alg, count]) => `${count} ${alg}`).join(', ')})` : '';
  return pass(`${keys.length} key(s)${besides}, each with kid, use sig, RSA ${sizes.join('/')} bits, public members only`);
}

async function signingAlgorithms(site: Site): Promise<Outcome> {
  const algs = (await site.discovery()).body.id_token_signing_alg_values_supported;
  if (!Array.isArray(algs)) return fail('discovery has no id_token_signing_alg_values_supported');
  const weak = algs.filter((alg) => typeof alg === 'string' && (/^HS/i.test(alg) || alg === 'none'));
  if (weak.length) return fail(`id tokens may be signed with ${list(weak)}: a shared secret (or nothing) instead of the published keys`);
  if (!algs.includes('RS256')) return fail(`id_token_signing_alg_values_supported is ${list(algs)}, without RS256`);
  return pass(`id tokens are signed with ${list(algs)}`);
}

/** Keys of one algorithm replace only one another, so each algorithm needs a second key of its own staged. */
async function nextKeyStaged(site: Site): Promise<Outcome> {
  const keys = (await publishedKeys(site)).filter((key) => key.use === 'sig');
  const perAlgorithm = new Map<string, number>();
  for (const key of keys) {
    const alg = typeof key.alg === 'string' ? key.alg : 'RS256';
    perAlgorithm.set(alg, (perAlgorithm.get(alg) ?? 0) + 1);
  }
  const alone = [...perAlgorithm].filter(([, count]) => count === 1).map(([alg]) => alg).sort((a, b) => rank(a) - rank(b));
  if (alone.length === 0) return pass(`${keys.length} signing keys published: the next (or previous) key is already in relying parties' caches`);
  const rotate = alone.map((alg) => (alg === 'RS256' ? "'authz keys rotate'" : `'authz keys rotate --alg ${alg}'`)).join(', ');
  return warn(
    `only one ${list(alone)} signing key is published, so no next key is staged: a key switched in now signs tokens that relying parties ` +
      `holding a cached JWKS cannot verify until their cache expires. Stage one ahead with ${rotate} (it signs only after the activation delay)`,
  );
}

// --- clock ---------------------------------------------------------------------------------------------------

async function clockSkew(site: Site): Promise<Outcome> {
  const { response, receivedAt } = await site.discovery();
  const date = response.headers.get('date');
  const serverTime = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(serverTime)) return warn('the server sent no usable Date header, so its clock cannot be compared');
  // Date has whole seconds: allow the second it was truncated to.
  const skew = Math.max(0, Math.abs(receivedAt - serverTime) - 1000) / 1000;
  const reason = `the server's clock is ${Math.round(skew)} s ${serverTime > receivedAt ? 'ahead of' : 'behind'} this machine's`;
  if (skew > CLOCK_FAIL_SECONDS) return fail(`${reason}: tokens will look expired or not yet valid (check NTP on both)`);
  if (skew > CLOCK_WARN_SECONDS) return warn(`${reason}: check NTP on both`);
  return pass(`within ${CLOCK_WARN_SECONDS} s of this machine's clock`);
}

// --- client credentials ----------------------------------------------------------------------------------------

const basicAuth = (site: Site) => {
  const client = site.options.client as { id: string; secret: string };
  // RFC 6749 §2.3.1: form-encode each part before joining.
  return `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
};

async function postForm(site: Site, url: string, form: Record<string, string | undefined>): Promise<{ status: number; body: Json }> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) if (value !== undefined) body.set(name, value);
  const response = await request(url, {
    method: 'POST',
    headers: { authorization: basicAuth(site), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
  });
  const text = await response.text().catch(() => '');
  try {
    return { status: response.status, body: JSON.parse(text) as Json };
  } catch {
    return { status: response.status, body: {} };
  }
}

/** One token request per run, shared by the grant check and the token check. */
const clientCredentialsToken = (site: Site) =>
  site.once('client-credentials', async () =>
    postForm(site, await site.endpoint('token_endpoint'), { grant_type: 'client_credentials', resource: site.options.resource }),
  );

async function clientCredentialsGrant(site: Site): Promise<Outcome> {
  if (!site.options.client) return undefined;
  const { status, body } = await clientCredentialsToken(site);
  if (status === 200 && typeof body.access_token === 'string') {
    return pass(`${site.options.client.id} got a ${body.token_type ?? ''} token${body.scope ? ` for scope "${body.scope}"` : ''}, expires in ${body.expires_in ?? '?'} s`);
  }
  const error = typeof body.error === 'string' ? `${body.error}${body.error_description ? ` (${body.error_description})` : ''}` : 'no token';
  return fail(`the token endpoint answered ${status} ${error}`);
}

async function verifyJwt(site: Site, token: string): Promise<Outcome> {
  const header = decodeProtectedHeader(token);
  const jwks = createRemoteJWKSet(new URL(await site.endpoint('jwks_uri')), { timeoutDuration: TIMEOUT_MS });
  const { payload } = await jwtVerify(token, jwks, {
    issuer: site.issuer,
    clockTolerance: CLOCK_FAIL_SECONDS,
    ...(header.typ === undefined ? {} : { typ: 'at+jwt' }),
  });
  const lifetime = payload.exp && payload.iat ? `${payload.exp - payload.iat} s` : 'unknown';
  return pass(`a JWT (${header.typ ?? 'no typ'}) that verifies against the JWKS: kid ${header.kid ?? '(none)'}, lifetime ${lifetime}, aud ${payload.aud ?? '(none)'}`);
}

async function introspect(site: Site, token: string): Promise<Outcome> {
  const { status, body } = await postForm(site, await site.endpoint('introspection_endpoint'), { token });
  if (status !== 200) return fail(`introspection answered ${status} ${body.error ?? ''}`.trim());
  if (body.active !== true) return fail('introspection says the token just issued is not active');
  return pass(`an opaque token that introspects as active${body.exp ? `, expires in ${Number(body.exp) - Math.floor(Date.now() / 1000)} s` : ''}`);
}

async function accessTokenValid(site: Site): Promise<Outcome> {
  if (!site.options.client) return undefined;
  const { body } = await clientCredentialsToken(site);
  const token = body.access_token;
  if (typeof token !== 'string') return undefined; // the grant check has already failed
  if (token.split('.').length !== 3) return introspect(site, token);
  try {
    decodeJwt(token);
  } catch {
    return introspect(site, token);
  }
  return verifyJwt(site, token);
}

// --- running -------------------------------------------------------------------------------------------------

interface Check {
  name: string;
  run: (site: Site) => Promise<Outcome>;
}

export const CHECKS: Check[] = [
  { name: 'discovery', run: discoveryAnswers },
  { name: 'issuer', run: issuerMatches },
  { name: 'endpoints', run: endpointsOnOrigin },
  { name: 'rfc8414', run: serverMetadataAgrees },
  { name: 'https', run: httpsEverywhere },
  { name: 'hsts', run: strictTransportSecurity },
  { name: 'csp', run: contentSecurityPolicy },
  { name: 'jwks-cache', run: jwksCacheControl },
  { name: 'metrics', run: metricsNotPublic },
  { name: 'keys', run: signingKeys },
  { name: 'signing-algs', run: signingAlgorithms },
  { name: 'key-rotation', run: nextKeyStaged },
  { name: 'clock', run: clockSkew },
  { name: 'client-credentials', run: clientCredentialsGrant },
  { name: 'access-token', run: accessTokenValid },
];

/** One line, whatever went wrong: our own reasons as they are, anything else by its message. */
function describe(error: unknown): string {
  if (error instanceof ProbeError) return error.message;
  if (error instanceof Error) return `${(error as { code?: string }).code ?? error.name}: ${error.message}`.replace(/\s*\n\s*/g, ' ');
  return String(error);
}

async function runCheck(check: Check, site: Site): Promise<CheckResult | undefined> {
  try {
    const outcome = await check.run(site);
    return outcome && { check: check.name, ...outcome };
  } catch (error) {
    return { check: check.name, status: 'FAIL', reason: describe(error) };
  }
}

/** Runs every check in order; when discovery itself fails the rest have nothing to work on and are not run. */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const site = new Site(options);
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    const result = await runCheck(check, site);
    if (result) results.push(result);
    if (check.name === 'discovery' && result?.status === 'FAIL') break;
  }
  return results;
}

export function summarize(results: CheckResult[]) {
  const count = (status: Status) => results.filter((result) => result.status === status).length;
  return { passed: count('PASS'), warnings: count('WARN'), failed: count('FAIL') };
}
