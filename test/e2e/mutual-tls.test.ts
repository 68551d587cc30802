/**
 * Mutual TLS (RFC 8705) as a deployment meets it: a TLS-terminating proxy asks clients for a certificate and
 * passes it on in X-SSL-Client-Cert (URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`), which the relying
 * parties' fetch adds here in the proxy's place. openid-client authenticates with `tls_client_auth` (a certificate
 * from the trusted authority naming the client) and `self_signed_tls_client_auth` (a certificate it registered),
 * and gets tokens bound to its certificate, which userinfo and an API then ask for. Over HTTP, on PostgreSQL and
 * Redis; every refusal is an OAuth error.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer } from '../../examples/resource-server/src/app.js';
import { clientRepositoryOptions, ClientRepository, type NewClient } from '../../src/clients/clients.js';
import { jwksOfCertificates } from '../../src/clients/client-certificates.js';
import { type CertificateAuthority, type TestCertificate, certificateAuthority, selfSignedCertificate } from '../support/certificates.js';
import { API, REDIRECT_URI, authorize, createUser } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const HEADER = 'X-SSL-Client-Cert';
/** The proxy's second host, which asks clients for certificates (MTLS_ENDPOINTS_URL); the issuer's host asks none. */
const MTLS_HOST = 'https://mtls.example.test';
const OPAQUE_API = 'https://ledger.example.test';
const MESSAGES_API = 'https://messages.example.test';
/** As the certificate says it, in RFC 4514's order (the certificate holds C, O, CN). */
const BILLING_DN = 'CN=billing\\, nightly,O=Example Corp,C=DE';
const BILLING_NAMES = { dns: 'billing.example.test', ip: '::1', email: 'ops@example.test', uri: 'spiffe://example.test/billing' };

let server: TestServer;
let authority: CertificateAuthority;
let billing: TestCertificate;

beforeAll(async () => {
  authority = await certificateAuthority('C=DE, O=Example Corp, CN=Example Client CA');
  billing = await authority.issue('C=DE, O=Example Corp, CN=billing\\, nightly', BILLING_NAMES);
  const folder = mkdtempSync(path.join(tmpdir(), 'mtls-'));
  const caFile = path.join(folder, 'clients-ca.pem');
  writeFileSync(caFile, authority.certificate.pem);
  server = await startTestServer({ env: { PROXY: 'true', MTLS_CERTIFICATE_HEADER: HEADER, MTLS_TRUSTED_CA_FILE: caFile, MTLS_ENDPOINTS_URL: `${MTLS_HOST}/`, CLIENT_REGISTRATION: 'open' } });
  await server.services.apis.create({ indicator: API, name: 'Payments', scopes: ['payments:read'], isDefault: true });
  await server.services.apis.create({ indicator: OPAQUE_API, name: 'Ledger', scopes: ['ledger:read'], accessTokenFormat: 'opaque' });
});
afterAll(async () => {
  await server.close();
});

/** openid-client for `clientId` authenticating with its certificate, which the proxy passes on as nginx does. */
function relyingParty(clientId: string, certificate: TestCertificate | string | undefined) {
  const header = typeof certificate === 'string' ? certificate : certificate && encodeURIComponent(certificate.pem);
  return oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.TlsClientAuth(), {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: (url, init) => {
      const headers = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
      if (header !== undefined) headers.set(HEADER, header);
      return fetch(url, { ...init, headers });
    },
  });
}

const service = async (input: Partial<NewClient>) => (await server.services.clients.create({ type: 'service', name: 'Billing', scope: 'payments:read ledger:read', ...input })).client.clientId;

describe('discovery', () => {
  test('names both mutual TLS client authentications and certificate-bound tokens', async () => {
    const document = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    // Introspection and revocation take the same (RFC 8414 §2: their lists default to the token endpoint's).
    expect(document.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['tls_client_auth', 'self_signed_tls_client_auth', 'client_secret_basic']));
    expect(document.tls_client_certificate_bound_access_tokens).toBe(true);
  });
});

describe('endpoints on a host of their own (RFC 8705 §5, MTLS_ENDPOINTS_URL)', () => {
  test('discovery names them as mtls_endpoint_aliases', async () => {
    const document = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(document.mtls_endpoint_aliases).toEqual({
      token_endpoint: `${MTLS_HOST}/token`,
      revocation_endpoint: `${MTLS_HOST}/token/revocation`,
      introspection_endpoint: `${MTLS_HOST}/token/introspection`,
      userinfo_endpoint: `${MTLS_HOST}/me`,
      device_authorization_endpoint: `${MTLS_HOST}/device/auth`,
      pushed_authorization_request_endpoint: `${MTLS_HOST}/request`,
    });
    // Each alias is an endpoint this server answers (the proxy sends both hosts to it).
    for (const [name, alias] of Object.entries(document.mtls_endpoint_aliases as Record<string, string>)) {
      expect(alias.replace(MTLS_HOST, server.issuer)).toBe(document[name]);
    }
  });

  test('a client that uses them authenticates with its certificate there, and gets, introspects and revokes a bound token', async () => {
    const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN, certificateBoundTokens: true });
    const split = (aliases: boolean) =>
      oidc.discovery(new URL(server.issuer), clientId, { use_mtls_endpoint_aliases: aliases }, oidc.TlsClientAuth(), {
        execute: [oidc.allowInsecureRequests],
        // As the proxy would: the certificate is passed on from the second host; the issuer's host asks for none.
        [oidc.customFetch]: (url, init) => {
          const headers = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
          const atAlias = url.startsWith(MTLS_HOST);
          headers.set(HEADER, atAlias ? encodeURIComponent(billing.pem) : '');
          return fetch(atAlias ? `${server.url}${url.slice(MTLS_HOST.length)}` : url, { ...init, headers });
        },
      });
    const client = await split(true);
    const tokens = await oidc.clientCredentialsGrant(client, { scope: 'ledger:read', resource: OPAQUE_API });
    expect(await oidc.tokenIntrospection(client, tokens.access_token)).toMatchObject({ active: true, client_id: clientId, cnf: { 'x5t#S256': billing.thumbprint } });
    await oidc.tokenRevocation(client, tokens.access_token);
    expect(await oidc.tokenIntrospection(client, tokens.access_token)).toMatchObject({ active: false });
    // The same client at the issuer's own endpoints, where no certificate comes: it cannot authenticate.
    await expect(oidc.clientCredentialsGrant(await split(false), { scope: 'ledger:read', resource: OPAQUE_API })).rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('tls_client_auth: a certificate from the trusted authority that names the client', () => {
  test('by its subject DN: a JWT bound to the certificate, which an API checks against cnf.x5t#S256', async () => {
    const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN, certificateBoundTokens: true });
    const tokens = await oidc.clientCredentialsGrant(await relyingParty(clientId, billing), { scope: 'payments:read' });
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), { issuer: server.issuer, audience: API });
    expect(payload).toMatchObject({ client_id: clientId, scope: 'payments:read', cnf: { 'x5t#S256': billing.thumbprint } });
  });

  test('by one of its subject alternative names: DNS, IP address (compared as an address), email or URI', async () => {
    const registrations: Partial<NewClient>[] = [
      { tlsClientAuthSanDns: 'BILLING.example.test' },
      { tlsClientAuthSanIp: '0:0:0:0:0:0:0:1' },
      { tlsClientAuthSanEmail: 'ops@example.test' },
      { tlsClientAuthSanUri: 'spiffe://example.test/billing' },
    ];
    for (const registration of registrations) {
      const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', ...registration });
      const tokens = await oidc.clientCredentialsGrant(await relyingParty(clientId, billing), { scope: 'payments:read' });
      expect(tokens.access_token).toBeTruthy();
    }
  });

  test('no certificate, not a certificate, another authority’s, another subject’s or an expired one is invalid_client', async () => {
    const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN });
    const impostorAuthority = await certificateAuthority('C=DE, O=Example Corp, CN=Example Client CA');
    const presented: (TestCertificate | string | undefined)[] = [
      undefined,
      'not%20a%20certificate',
      await impostorAuthority.issue('C=DE, O=Example Corp, CN=billing\\, nightly', BILLING_NAMES),
      await authority.issue('C=DE, O=Example Corp, CN=reports', { dns: 'reports.example.test' }),
      await authority.issue('C=DE, O=Example Corp, CN=billing\\, nightly', BILLING_NAMES, { notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 3_600_000) }),
      await selfSignedCertificate('C=DE, O=Example Corp, CN=billing\\, nightly'),
    ];
    for (const certificate of presented) {
      await expect(oidc.clientCredentialsGrant(await relyingParty(clientId, certificate))).rejects.toMatchObject({ error: 'invalid_client' });
    }
  });
});

describe('revoked certificates (MTLS_CRL_FILE)', () => {
  /** openid-client at `instance` (another instance of the issuer), presenting `certificate` through the proxy. */
  const relyingPartyAt = (instance: TestServer, clientId: string, certificate: TestCertificate) =>
    oidc.discovery(new URL(instance.issuer), clientId, undefined, oidc.TlsClientAuth(), {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: (url, init) => {
        const headers = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
        headers.set(HEADER, encodeURIComponent(certificate.pem));
        return fetch(url.replace(instance.issuer, instance.url), { ...init, headers });
      },
    });

  test('a certificate its authority revoked no longer authenticates; a new list is read at the next rescan, a broken one is not', async () => {
    const crlFile = path.join(mkdtempSync(path.join(tmpdir(), 'crl-')), 'clients.crl.pem');
    const revoked = await authority.issue('C=DE, O=Example Corp, CN=billing\\, nightly', BILLING_NAMES);
    writeFileSync(crlFile, await authority.revocationList([revoked]));
    const checking = await startTestServer({ instanceOf: server, env: { MTLS_CRL_FILE: crlFile } });
    try {
      const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN });
      expect((await oidc.clientCredentialsGrant(await relyingPartyAt(checking, clientId, billing), { scope: 'payments:read' })).access_token).toBeTruthy();
      await expect(oidc.clientCredentialsGrant(await relyingPartyAt(checking, clientId, revoked), { scope: 'payments:read' })).rejects.toMatchObject({ error: 'invalid_client' });
      // The instance without the list still takes it: the list is what refused it.
      expect((await oidc.clientCredentialsGrant(await relyingPartyAt(server, clientId, revoked), { scope: 'payments:read' })).access_token).toBeTruthy();

      // The authority revokes the other certificate too; the cron job writes the new list; the next rescan reads it.
      await new Promise((resolve) => setTimeout(resolve, 20));
      writeFileSync(crlFile, await authority.revocationList([revoked, billing]));
      await checking.server.reloadKeys();
      await expect(oidc.clientCredentialsGrant(await relyingPartyAt(checking, clientId, billing), { scope: 'payments:read' })).rejects.toMatchObject({ error: 'invalid_client' });

      // A download that went wrong is logged, and the lists in force are kept.
      await new Promise((resolve) => setTimeout(resolve, 20));
      writeFileSync(crlFile, '<html>502 Bad Gateway</html>');
      await checking.server.reloadKeys();
      await expect(oidc.clientCredentialsGrant(await relyingPartyAt(checking, clientId, billing), { scope: 'payments:read' })).rejects.toMatchObject({ error: 'invalid_client' });
    } finally {
      await checking.close();
    }
  });

  test('a list that is not one, or that none of the trusted authorities signed, stops the start with the reason', async () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'crl-'));
    const stranger = await certificateAuthority('C=DE, O=Elsewhere, CN=Other CA');
    const cases: [string, RegExp][] = [
      ['not a list', /MTLS_CRL_FILE: .*: it holds no CRL \(PEM, "BEGIN X509 CRL"\)/],
      [await stranger.revocationList([]), /MTLS_CRL_FILE: .*: CRL 1 \(issuer .*Other CA\) is signed by none of the authorities in MTLS_TRUSTED_CA_FILE/],
    ];
    for (const [content, reason] of cases) {
      const file = path.join(folder, `${cases.findIndex(([c]) => c === content)}.pem`);
      writeFileSync(file, content);
      await expect(startTestServer({ instanceOf: server, env: { MTLS_CRL_FILE: file } })).rejects.toThrow(reason);
    }
    await expect(startTestServer({ instanceOf: server, env: { MTLS_CRL_FILE: path.join(folder, 'absent.pem') } })).rejects.toThrow(/MTLS_CRL_FILE: .*absent\.pem: ENOENT/);
  });
});

describe('self_signed_tls_client_auth: a certificate the client registered', () => {
  test('the registered certificate authenticates (either of two during a rollover); another self-signed one does not', async () => {
    const [current, next, stranger] = await Promise.all(['CN=billing', 'CN=billing 2', 'CN=billing'].map((name) => selfSignedCertificate(name)));
    const clientId = await service({ tokenEndpointAuthMethod: 'self_signed_tls_client_auth', jwks: jwksOfCertificates([current!.pem, next!.pem]) as NewClient['jwks'] });
    for (const certificate of [current, next]) {
      expect((await oidc.clientCredentialsGrant(await relyingParty(clientId, certificate))).access_token).toBeTruthy();
    }
    await expect(oidc.clientCredentialsGrant(await relyingParty(clientId, stranger))).rejects.toMatchObject({ error: 'invalid_client' });
  });

  test('an opaque token bound to the certificate introspects with its cnf', async () => {
    const certificate = await selfSignedCertificate('CN=ledger reader');
    const clientId = await service({ tokenEndpointAuthMethod: 'self_signed_tls_client_auth', jwks: jwksOfCertificates([certificate.pem]) as NewClient['jwks'], certificateBoundTokens: true });
    const rp = await relyingParty(clientId, certificate);
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: OPAQUE_API, scope: 'ledger:read' });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    expect(await oidc.tokenIntrospection(rp, tokens.access_token)).toMatchObject({ active: true, client_id: clientId, cnf: { 'x5t#S256': certificate.thumbprint } });
  });
});

describe('a web app with certificate-bound tokens', () => {
  test('signs a user in; userinfo answers its token only with the same certificate', async () => {
    const certificate = await authority.issue('C=DE, O=Example Corp, CN=portal', { dns: 'portal.example.test' });
    const { client } = await server.services.clients.create({
      type: 'web',
      name: 'Portal',
      redirectUris: [REDIRECT_URI],
      firstParty: true,
      tokenEndpointAuthMethod: 'tls_client_auth',
      tlsClientAuthSanDns: 'portal.example.test',
      certificateBoundTokens: true,
    });
    const user = await createUser(server);
    const rp = await relyingParty(client.clientId, certificate);
    const { callbackUrl, codeVerifier, state, nonce } = await authorize(rp, user, { scope: 'openid email' });
    const tokens = await oidc.authorizationCodeGrant(rp, callbackUrl as URL, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
    expect(await oidc.fetchUserInfo(rp, tokens.access_token, user.userId)).toMatchObject({ sub: user.userId, email: user.email });

    const other = await authority.issue('C=DE, O=Example Corp, CN=portal', { dns: 'portal.example.test' });
    for (const presented of [undefined, other]) {
      const response = await fetch(`${server.issuer}/me`, {
        headers: { authorization: `Bearer ${tokens.access_token}`, ...(presented ? { [HEADER]: encodeURIComponent(presented.pem) } : {}) },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });
});

/** An RFC 7591 registration at `at`, answered as JSON. */
async function register(metadata: Record<string, unknown>, at: TestServer = server) {
  const response = await fetch(`${at.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('apps that register themselves (RFC 7591 with RFC 8705’s metadata)', () => {
  const app = { client_name: 'Partner portal', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'] };

  test('register either mutual TLS method and certificate-bound tokens, and authenticate so at once', async () => {
    const certificate = await selfSignedCertificate('CN=partner portal');
    const jwks = jwksOfCertificates([certificate.pem]);
    const selfSigned = await register({ ...app, token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks, tls_client_certificate_bound_access_tokens: true });
    expect(selfSigned.status).toBe(201);
    expect(selfSigned.body).toMatchObject({ token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks, tls_client_certificate_bound_access_tokens: true });
    expect(selfSigned.body.client_secret).toBeUndefined();
    // Authenticated with the certificate, the introspection endpoint answers (an unknown token is inactive).
    expect(await oidc.tokenIntrospection(await relyingParty(String(selfSigned.body.client_id), certificate), 'not-a-token')).toEqual({ active: false });
    await expect(oidc.tokenIntrospection(await relyingParty(String(selfSigned.body.client_id), billing), 'not-a-token')).rejects.toMatchObject({ error: 'invalid_client' });

    const pki = await register({ ...app, token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: BILLING_DN });
    expect(pki.status).toBe(201);
    expect(pki.body).toMatchObject({ token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: BILLING_DN });
    expect(await oidc.tokenIntrospection(await relyingParty(String(pki.body.client_id), billing), 'not-a-token')).toEqual({ active: false });

    // RFC 7592: what the certificate must name cannot change in an update.
    const update = await fetch(String(pki.body.registration_client_uri).replace(server.issuer, server.url), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${pki.body.registration_access_token}` },
      body: JSON.stringify({ ...app, client_id: pki.body.client_id, token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=someone else' }),
    });
    expect(update.status).toBe(400);
    expect(await update.json()).toEqual({ error: 'invalid_client_metadata', error_description: 'tls_client_auth_subject_dn: cannot change; register a new client instead' });
  });

  test('what cannot work is refused with invalid_client_metadata, naming the metadata', async () => {
    expect(await register({ ...app, token_endpoint_auth_method: 'tls_client_auth' })).toEqual({
      status: 400,
      body: { error: 'invalid_client_metadata', error_description: expect.stringMatching(/^tls_client_auth_subject_dn: tls_client_auth names what the client’s certificate must say/) },
    });
    expect(await register({ ...app, token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_ip: 'not an address' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_client_metadata', error_description: expect.stringMatching(/^tls_client_auth_san_ip: /) },
    });
    expect(await register({ ...app, dpop_bound_access_tokens: true, tls_client_certificate_bound_access_tokens: true })).toMatchObject({
      status: 400,
      body: { error: 'invalid_client_metadata', error_description: expect.stringMatching(/^tls_client_certificate_bound_access_tokens: a token is bound to one key/) },
    });
  });
});

describe('an API checking certificate-bound tokens (examples/resource-server)', () => {
  test('accepts a bound JWT only with the certificate it is bound to, which its own proxy passes on', async () => {
    await server.services.apis.create({ indicator: MESSAGES_API, name: 'Messages', scopes: ['messages:read'] });
    const app = await createResourceServer({ issuer: server.issuer, audience: MESSAGES_API, certificateHeader: HEADER });
    const api = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => api.once('listening', resolve));
    try {
      const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN, certificateBoundTokens: true, scope: 'messages:read' });
      const { access_token } = await oidc.clientCredentialsGrant(await relyingParty(clientId, billing), { resource: MESSAGES_API, scope: 'messages:read' });
      const other = await authority.issue('C=DE, O=Example Corp, CN=billing\\, nightly', BILLING_NAMES);
      const call = (certificate?: TestCertificate) =>
        fetch(`http://127.0.0.1:${(api.address() as AddressInfo).port}/messages`, {
          headers: { authorization: `Bearer ${access_token}`, ...(certificate ? { [HEADER]: encodeURIComponent(certificate.pem) } : {}) },
        });
      expect((await call(billing)).status).toBe(200);
      for (const presented of [undefined, other]) {
        const refused = await call(presented);
        expect(refused.status).toBe(401);
        expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token".*bound to a client certificate/);
      }
    } finally {
      api.closeAllConnections();
      await new Promise((resolve) => api.close(resolve));
    }
  });
});

describe('an instance with mutual TLS turned off', () => {
  test('answers a mutual TLS client with an OAuth error naming what it lacks, not a 500', async () => {
    const clientId = await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN, certificateBoundTokens: true });
    const off = await startTestServer({ instanceOf: server, env: { MTLS_CERTIFICATE_HEADER: '', MTLS_TRUSTED_CA_FILE: '', MTLS_ENDPOINTS_URL: '' } });
    try {
      const registration = await register({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: BILLING_DN }, off);
      expect(registration).toMatchObject({ status: 400, body: { error: 'invalid_client_metadata', error_description: expect.stringMatching(/^token_endpoint_auth_method: mutual TLS is off on this server/) } });
      const response = await fetch(`${off.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', [HEADER]: encodeURIComponent(billing.pem) },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }),
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: 'invalid_client_metadata',
        error_description: "token_endpoint_auth_method must be 'client_secret_basic', 'client_secret_post', 'private_key_jwt', or 'none'",
      });
    } finally {
      await off.close();
    }
  });
});

describe('registration', () => {
  test('what cannot work is refused, naming the field', async () => {
    const { clients } = server.services;
    await expect(clients.create({ type: 'service', name: 'x', tokenEndpointAuthMethod: 'tls_client_auth' })).rejects.toThrow(/tlsClientAuthSubjectDn: tls_client_auth names what the client’s certificate must say: exactly one/);
    await expect(
      clients.create({ type: 'service', name: 'x', tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSubjectDn: BILLING_DN, tlsClientAuthSanDns: 'billing.example.test' }),
    ).rejects.toThrow(/exactly one of/);
    await expect(clients.create({ type: 'service', name: 'x', tlsClientAuthSanDns: 'billing.example.test' })).rejects.toThrow(/tlsClientAuthSanDns: applies to tokenEndpointAuthMethod tls_client_auth/);
    await expect(clients.create({ type: 'service', name: 'x', tokenEndpointAuthMethod: 'self_signed_tls_client_auth' })).rejects.toThrow(/jwks: self_signed_tls_client_auth needs the client’s certificates/);
    await expect(
      clients.create({ type: 'service', name: 'x', tokenEndpointAuthMethod: 'self_signed_tls_client_auth', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] } }),
    ).rejects.toThrow(/give each key its certificate there/);
    await expect(clients.create({ type: 'service', name: 'x', certificateBoundTokens: true, requireDpop: true })).rejects.toThrow(/certificateBoundTokens: a token is bound to one key/);
    const id = await service({});
    await expect(clients.update(id, { requireDpop: true, certificateBoundTokens: true })).rejects.toThrow(/certificateBoundTokens: a token is bound to one key/);
    expect((await clients.update(id, { certificateBoundTokens: true })).certificateBoundTokens).toBe(true);
    await expect(clients.rotateSecret(await service({ tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSanDns: 'a.example.test' }), 0)).rejects.toThrow(/does not authenticate with a secret/);
  });

  test('a server without MTLS_CERTIFICATE_HEADER, or without MTLS_TRUSTED_CA_FILE for tls_client_auth, refuses such clients', async () => {
    const off = new ClientRepository(server.services.db, clientRepositoryOptions({ ...server.config, mutualTls: undefined }, server.services.audit, 'test'));
    await expect(off.create({ type: 'service', name: 'x', certificateBoundTokens: true })).rejects.toThrow(/certificateBoundTokens: mutual TLS is off on this server: set MTLS_CERTIFICATE_HEADER/);
    await expect(off.create({ type: 'service', name: 'x', tokenEndpointAuthMethod: 'self_signed_tls_client_auth', jwks: jwksOfCertificates([billing.pem]) as NewClient['jwks'] })).rejects.toThrow(
      /tokenEndpointAuthMethod: mutual TLS is off/,
    );
    const selfSignedOnly = new ClientRepository(server.services.db, clientRepositoryOptions({ ...server.config, mutualTls: { trustedAuthorities: [] } }, server.services.audit, 'test'));
    await expect(selfSignedOnly.create({ type: 'service', name: 'x', tokenEndpointAuthMethod: 'tls_client_auth', tlsClientAuthSanDns: 'a.example.test' })).rejects.toThrow(
      /tls_client_auth needs MTLS_TRUSTED_CA_FILE/,
    );
  });
});
