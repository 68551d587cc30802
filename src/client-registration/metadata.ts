/**
 * RFC 7591 client metadata as an app registering itself sends it, made into one of our kinds of client, and our
 * client made back into the metadata answered (RFC 7591 §3.2.1, RFC 7592 §3):
 * - `grant_types` authorization_code (the default), with `token_endpoint_auth_method` none: an `spa` (public, PKCE;
 *   SPAs, mobile and desktop apps, MCP clients); with a secret or private_key_jwt: a `web` app;
 * - client_credentials alone: a `service`, only with an initial access token, naming the scopes it needs;
 * - the device code grant: a `device`.
 * Metadata this server has no use for is ignored, as RFC 7591 §2 asks; what only describes the app (client_uri,
 * logo_uri, policy_uri, tos_uri, contacts, software_id, software_version) is kept beside it and echoed back. A
 * self-registered client is never first-party (people are asked for consent), and never gets the admin API's scopes.
 */
import { z } from 'zod';
import { ADMIN_READ_SCOPE, ADMIN_SCOPE } from '../admin/auth.js';
import { type ClientRecord, type ClientType, DEVICE_CODE_GRANT, type NewClient } from '../clients/clients.js';
import { webPage } from '../clients/app-links.js';
import { TLS_SUBJECT_METADATA } from '../clients/client-certificates.js';
import { DEFAULT_ENC, ENCRYPTED_RESPONSES, ENCRYPTION_ALGS, ENCRYPTION_ENCS, type ResponseEncryption, encryptionMetadata } from '../clients/response-encryption.js';
import { describeIssues } from '../errors.js';
import { SIGNING_ALG, SIGNING_ALGS, SIGNING_ALGS_IN_WORDS, type SigningAlg } from '../keys/signing-keys.js';
import { isNativeApp } from '../oidc/client-adapter.js';

/** An RFC 7591 §3.2.2 error: `invalid_redirect_uri` or `invalid_client_metadata`, with a sentence saying why. */
export class RegistrationError extends Error {
  constructor(
    readonly code: 'invalid_client_metadata' | 'invalid_redirect_uri',
    message: string,
  ) {
    super(message);
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

const uris = z.array(z.string().max(2048)).max(20);
const signingAlg = z.enum(SIGNING_ALGS, { error: `this server signs with ${SIGNING_ALGS_IN_WORDS} only` });
/** The metadata naming what signs for the client: all one algorithm here (the client's `signingAlg`). */
const SIGNING_METADATA = ['id_token_signed_response_alg', 'userinfo_signed_response_alg', 'authorization_signed_response_alg', 'introspection_signed_response_alg'] as const;

const encryptionAlg = z.enum(ENCRYPTION_ALGS, { error: `responses are encrypted here with ${ENCRYPTION_ALGS.join(', ')} only (public-key algorithms)` });
const encryptionEnc = z.enum(ENCRYPTION_ENCS, { error: `responses are encrypted here with ${ENCRYPTION_ENCS.join(', ')} only` });
const encryptionFields = {
  id_token_encrypted_response_alg: encryptionAlg.optional(),
  id_token_encrypted_response_enc: encryptionEnc.optional(),
  userinfo_encrypted_response_alg: encryptionAlg.optional(),
  userinfo_encrypted_response_enc: encryptionEnc.optional(),
  authorization_encrypted_response_alg: encryptionAlg.optional(),
  authorization_encrypted_response_enc: encryptionEnc.optional(),
  introspection_encrypted_response_alg: encryptionAlg.optional(),
  introspection_encrypted_response_enc: encryptionEnc.optional(),
};

const registrationRequest = z.object({
  redirect_uris: uris.optional(),
  post_logout_redirect_uris: uris.optional(),
  grant_types: z.array(z.string().max(200)).max(5).optional(),
  response_types: z.array(z.string().max(50)).max(5).optional(),
  token_endpoint_auth_method: z.string().max(50).optional(),
  client_name: z.string().trim().max(200).optional(),
  scope: z.string().max(2048).optional(),
  application_type: z.enum(['web', 'native']).optional(),
  jwks_uri: z.string().max(2048).optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(10) }).optional(),
  subject_type: z.enum(['public', 'pairwise']).optional(),
  sector_identifier_uri: z.string().max(2048).optional(),
  backchannel_logout_uri: z.string().max(2048).optional(),
  backchannel_logout_session_required: z.boolean().optional(),
  dpop_bound_access_tokens: z.boolean().optional(),
  // RFC 8705 §2.1.2 and §3.4: what a tls_client_auth client's certificate names, and certificate-bound tokens.
  tls_client_auth_subject_dn: z.string().max(1000).optional(),
  tls_client_auth_san_dns: z.string().max(253).optional(),
  tls_client_auth_san_uri: z.string().max(2048).optional(),
  tls_client_auth_san_ip: z.string().max(45).optional(),
  tls_client_auth_san_email: z.string().max(254).optional(),
  tls_client_certificate_bound_access_tokens: z.boolean().optional(),
  require_pushed_authorization_requests: z.boolean().optional(),
  require_signed_request_object: z.boolean().optional(),
  // What signs for the app: one algorithm for all four (other than RS256 only where keys/ holds a key for it).
  id_token_signed_response_alg: signingAlg.optional(),
  userinfo_signed_response_alg: signingAlg.optional(),
  authorization_signed_response_alg: signingAlg.optional(),
  introspection_signed_response_alg: signingAlg.optional(),
  // And what encrypts them to the app's key: one alg and enc for all four too.
  ...encryptionFields,
  client_uri: webPage.optional(),
  logo_uri: webPage.optional(),
  policy_uri: webPage.optional(),
  tos_uri: webPage.optional(),
  contacts: z.array(z.email().max(254)).max(10).optional(),
  software_id: z.string().max(200).optional(),
  software_version: z.string().max(100).optional(),
});

/** The metadata that only describes the app: kept beside the client, echoed back, not used. */
const DESCRIPTIVE = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'contacts', 'software_id', 'software_version'] as const;

const OFFERED_GRANTS = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT];
/** Mutual TLS ones too: the client repository refuses them where the server has no MTLS_CERTIFICATE_HEADER. */
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'] as const;
type AuthMethod = (typeof AUTH_METHODS)[number];

export interface Registration {
  client: NewClient;
  /** What only describes the app, as given. */
  description: Record<string, unknown>;
}

/**
 * The client to create for a registration request (or the replacement for one, RFC 7592 §2.2), or a
 * RegistrationError saying what is wrong. `allowServices`: client_credentials may be registered (an initial
 * access token was presented).
 */
export function registrationOf(body: unknown, options: { allowServices: boolean }): Registration {
  const parsed = registrationRequest.safeParse(body);
  if (!parsed.success) throw new RegistrationError('invalid_client_metadata', describeIssues(parsed.error.issues));
  const input = parsed.data;
  const method = authMethodOf(input.token_endpoint_auth_method);
  const type = kindOf(input.grant_types ?? ['authorization_code'], method, input.response_types);
  if (type === 'service' && !options.allowServices) {
    throw new RegistrationError('invalid_client_metadata', 'grant_types: client_credentials is registered here only with an initial access token from an administrator');
  }
  const scope = scopeOf(input.scope, type);
  const redirectUris = input.redirect_uris ?? [];
  const client: NewClient = {
    type,
    name: input.client_name || nameFrom(redirectUris),
    redirectUris,
    postLogoutRedirectUris: input.post_logout_redirect_uris ?? [],
    // An spa is public by kind; the others take the method asked for (RFC 7591's default: client_secret_basic).
    tokenEndpointAuthMethod: method === 'none' ? undefined : method,
    scope,
    firstParty: false,
    jwks: input.jwks,
    jwksUri: input.jwks_uri,
    backchannelLogoutUri: input.backchannel_logout_uri,
    backchannelLogoutSessionRequired: input.backchannel_logout_uri === undefined ? undefined : input.backchannel_logout_session_required,
    requireDpop: input.dpop_bound_access_tokens ?? false,
    certificateBoundTokens: input.tls_client_certificate_bound_access_tokens ?? false,
    ...Object.fromEntries(Object.entries(TLS_SUBJECT_METADATA).map(([field, property]) => [field, input[property]])),
    requirePar: input.require_pushed_authorization_requests ?? false,
    requireSignedRequestObject: input.require_signed_request_object ?? false,
    signedUserinfo: input.userinfo_signed_response_alg !== undefined,
    signingAlg: oneSigningAlg(input),
    responseEncryption: oneEncryption(input),
    subjectType: input.subject_type ?? 'public',
    sectorIdentifierUri: input.sector_identifier_uri,
    // A public app that says it is native, or is sent back only to loopback or a private-use scheme (RFC 8252).
    nativeApp: type === 'spa' && (input.application_type === 'native' || (redirectUris.length > 0 && redirectUris.every(isNativeRedirect))),
  };
  const description = Object.fromEntries(DESCRIPTIVE.filter((name) => input[name] !== undefined).map((name) => [name, input[name]]));
  return { client, description };
}

/** The one algorithm the request's signing metadata name (RS256 when none does), or a RegistrationError naming the odd one out. */
function oneSigningAlg(input: Partial<Record<(typeof SIGNING_METADATA)[number], SigningAlg>>): SigningAlg {
  const named = SIGNING_METADATA.filter((name) => input[name] !== undefined);
  const first = named[0];
  if (first === undefined) return SIGNING_ALG;
  const other = named.find((name) => input[name] !== input[first]);
  if (other) throw new RegistrationError('invalid_client_metadata', `${other}: everything signed for one client is signed with one algorithm here: give the same as ${first}`);
  return input[first] ?? SIGNING_ALG;
}

/**
 * The one encryption the request's encryption metadata name (none when none does), or a RegistrationError naming
 * the odd one out: an enc without its alg (OpenID Connect Registration §2), a second alg or enc, or userinfo
 * encrypted but not signed (here userinfo is encrypted only as a signed JWT).
 */
function oneEncryption(input: Record<string, unknown>): ResponseEncryption | undefined {
  for (const response of ENCRYPTED_RESPONSES) {
    if (input[`${response}_encrypted_response_enc`] !== undefined && input[`${response}_encrypted_response_alg`] === undefined) {
      throw new RegistrationError('invalid_client_metadata', `${response}_encrypted_response_enc: give ${response}_encrypted_response_alg too`);
    }
  }
  if (input.userinfo_encrypted_response_alg !== undefined && input.userinfo_signed_response_alg === undefined) {
    throw new RegistrationError('invalid_client_metadata', 'userinfo_encrypted_response_alg: userinfo is encrypted here only as a signed JWT: give userinfo_signed_response_alg too');
  }
  const algs = ENCRYPTED_RESPONSES.map((response) => `${response}_encrypted_response_alg`).filter((name) => input[name] !== undefined);
  const first = algs[0];
  if (first === undefined) return undefined;
  const otherAlg = algs.find((name) => input[name] !== input[first]);
  if (otherAlg) throw new RegistrationError('invalid_client_metadata', `${otherAlg}: everything encrypted for one client is encrypted one way here: give the same as ${first}`);
  const encs = algs.map((name) => String(input[name.replace(/_alg$/, '_enc')] ?? DEFAULT_ENC));
  const otherEnc = encs.findIndex((enc) => enc !== encs[0]);
  if (otherEnc !== -1) {
    throw new RegistrationError('invalid_client_metadata', `${algs[otherEnc]?.replace(/_alg$/, '_enc')}: everything encrypted for one client is encrypted one way here: give the same as ${first.replace(/_alg$/, '_enc')}`);
  }
  return { alg: input[first] as ResponseEncryption['alg'], enc: encs[0] as ResponseEncryption['enc'] };
}

/**
 * Where this server may call private networks (ALLOW_PRIVATE_NETWORK_CALLS, the default outside production), an
 * app that registered itself with no initial access token must not name a URL the server calls (its JWKS, its
 * back-channel logout endpoint): it could point them at the private network (SSRF).
 */
export function refuseCalledUrls(client: NewClient): void {
  const named = client.jwksUri ? 'jwks_uri' : client.backchannelLogoutUri ? 'backchannel_logout_uri' : undefined;
  if (named) {
    throw new RegistrationError(
      'invalid_client_metadata',
      `${named}: this server may call private networks (ALLOW_PRIVATE_NETWORK_CALLS), so an app registering without an initial access token cannot name a URL for it to call`,
    );
  }
}

/** Whether `host` is one of `trusted` (an entry `*.example.com` takes any host under example.com). */
const hostTrusted = (host: string, trusted: readonly string[]) =>
  trusted.some((entry) => (entry.startsWith('*.') ? host.endsWith(entry.slice(1)) : host === entry));

/**
 * CLIENT_REGISTRATION_TRUSTED_HOSTS, for an app registering without an initial access token: every URL it names
 * (where people are sent back, what the server calls, what the consent page links to) is on a trusted host; a
 * native app's loopback or private-use redirect URIs are always taken.
 */
export function refuseUntrustedHosts(registration: Registration, trusted: readonly string[]): void {
  if (trusted.length === 0) return;
  const { client, description } = registration;
  const named: [string, string[]][] = [
    ['redirect_uris', (client.redirectUris ?? []).filter((uri) => !isNativeRedirect(uri))],
    ['post_logout_redirect_uris', (client.postLogoutRedirectUris ?? []).filter((uri) => !isNativeRedirect(uri))],
    ['jwks_uri', client.jwksUri ? [client.jwksUri] : []],
    ['backchannel_logout_uri', client.backchannelLogoutUri ? [client.backchannelLogoutUri] : []],
    ['sector_identifier_uri', client.sectorIdentifierUri ? [client.sectorIdentifierUri] : []],
    ...(['client_uri', 'logo_uri', 'policy_uri', 'tos_uri'] as const).map((name): [string, string[]] => [name, typeof description[name] === 'string' ? [description[name] as string] : []]),
  ];
  for (const [field, uris] of named) {
    for (const uri of uris) {
      const host = URL.parse(uri)?.hostname.toLowerCase() ?? '';
      if (hostTrusted(host, trusted)) continue;
      const code = field.includes('redirect_uris') ? 'invalid_redirect_uri' : 'invalid_client_metadata';
      throw new RegistrationError(code, `${field}: ${host || uri} is not a host an app may name without an initial access token from an administrator`);
    }
  }
}

/** A loopback http URI, or a private-use scheme: where only an app on the person's own device is sent back to. */
function isNativeRedirect(uri: string): boolean {
  const url = URL.parse(uri);
  return url !== null && ((url.protocol === 'http:' && LOOPBACK.has(url.hostname)) || !/^https?:$/.test(url.protocol));
}

function authMethodOf(method: string | undefined): AuthMethod {
  if (method === undefined) return 'client_secret_basic';
  if ((AUTH_METHODS as readonly string[]).includes(method)) return method as AuthMethod;
  throw new RegistrationError('invalid_client_metadata', `token_endpoint_auth_method: ${method} is not offered (${AUTH_METHODS.join(', ')})`);
}

function kindOf(grantTypes: string[], method: AuthMethod, responseTypes: string[] | undefined): ClientType {
  const grants = new Set(grantTypes);
  const unknown = [...grants].find((grant) => !OFFERED_GRANTS.includes(grant));
  if (unknown) throw new RegistrationError('invalid_client_metadata', `grant_types: ${unknown} is not offered (${OFFERED_GRANTS.join(', ')})`);
  const redirected = grants.has('authorization_code');
  const codes = responseTypes ?? (redirected ? ['code'] : []);
  if (codes.length !== (redirected ? 1 : 0) || (redirected && codes[0] !== 'code')) {
    throw new RegistrationError('invalid_client_metadata', 'response_types: only code is offered, with the authorization_code grant (not the implicit or hybrid flows)');
  }
  const kinds = [redirected, grants.has('client_credentials'), grants.has(DEVICE_CODE_GRANT)].filter(Boolean).length;
  if (kinds !== 1) {
    throw new RegistrationError('invalid_client_metadata', 'grant_types: one of authorization_code, client_credentials or the device code grant, each registered as a client of its own');
  }
  if (grants.has('client_credentials')) {
    if (method === 'none') throw new RegistrationError('invalid_client_metadata', 'token_endpoint_auth_method: a client_credentials client must authenticate');
    return 'service';
  }
  if (grants.has(DEVICE_CODE_GRANT)) return 'device';
  return method === 'none' ? 'spa' : 'web';
}

/** The scope asked for, tidied; a service must name its scopes, and no one gets the admin API's. */
function scopeOf(scope: string | undefined, type: ClientType): string | undefined {
  const tokens = (scope ?? '').split(/\s+/).filter(Boolean);
  const admin = tokens.find((token) => token === ADMIN_SCOPE || token === ADMIN_READ_SCOPE);
  if (admin) throw new RegistrationError('invalid_client_metadata', `scope: ${admin} is the admin API's, which an administrator gives`);
  if (type === 'service' && tokens.length === 0) throw new RegistrationError('invalid_client_metadata', 'scope: a client_credentials client names the API scopes it needs');
  return tokens.length > 0 ? tokens.join(' ') : undefined;
}

/** An app that gave no client_name is shown on the consent page by where it sends people back. */
function nameFrom(redirectUris: string[]): string {
  const host = URL.parse(redirectUris[0] ?? '')?.host;
  return host ? `An app at ${host}` : 'An unnamed app';
}

/** Our field names in a refusal, as the registration request names them. */
const REQUEST_NAMES: Record<string, string> = {
  name: 'client_name',
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  tokenEndpointAuthMethod: 'token_endpoint_auth_method',
  jwks: 'jwks',
  jwksUri: 'jwks_uri',
  backchannelLogoutUri: 'backchannel_logout_uri',
  backchannelLogoutSessionRequired: 'backchannel_logout_session_required',
  requireDpop: 'dpop_bound_access_tokens',
  certificateBoundTokens: 'tls_client_certificate_bound_access_tokens',
  ...TLS_SUBJECT_METADATA,
  requirePar: 'require_pushed_authorization_requests',
  requireSignedRequestObject: 'require_signed_request_object',
  signedUserinfo: 'userinfo_signed_response_alg',
  signingAlg: 'id_token_signed_response_alg',
  responseEncryption: 'id_token_encrypted_response_alg',
  subjectType: 'subject_type',
  sectorIdentifierUri: 'sector_identifier_uri',
};

/** A refusal of the client's repository (an InputError's message), as the RFC 7591 error it is. */
export function registrationRefusal(message: string): RegistrationError {
  const renamed = message.replace(/\b([a-zA-Z]+)(?=(\.\d+)?: )/g, (field) => REQUEST_NAMES[field] ?? field);
  const redirect = /^(redirect_uris|post_logout_redirect_uris)\b/.test(renamed);
  return new RegistrationError(redirect ? 'invalid_redirect_uri' : 'invalid_client_metadata', renamed);
}

const epoch = (date: Date) => Math.floor(date.getTime() / 1000);

/** The client as RFC 7591 §3.2.1 answers it: its metadata as registered, with what describes it. */
export function metadataOf(client: ClientRecord, description: Record<string, unknown>): Record<string, unknown> {
  const confidential = client.tokenEndpointAuthMethod === 'client_secret_basic' || client.tokenEndpointAuthMethod === 'client_secret_post';
  const metadata: Record<string, unknown> = {
    client_id: client.clientId,
    client_id_issued_at: epoch(client.createdAt),
    ...(confidential ? { client_secret_expires_at: 0 } : {}),
    client_name: client.name,
    grant_types: client.grantTypes,
    response_types: client.grantTypes.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    application_type: isNativeApp(client) ? 'native' : 'web',
  };
  if (client.redirectUris.length > 0) metadata.redirect_uris = client.redirectUris;
  if (client.postLogoutRedirectUris.length > 0) metadata.post_logout_redirect_uris = client.postLogoutRedirectUris;
  if (client.scope) metadata.scope = client.scope;
  for (const name of ['jwks', 'jwks_uri', ...Object.values(TLS_SUBJECT_METADATA)]) if (client.metadata[name] !== undefined) metadata[name] = client.metadata[name];
  if (client.backchannelLogoutUri) {
    metadata.backchannel_logout_uri = client.backchannelLogoutUri;
    metadata.backchannel_logout_session_required = client.backchannelLogoutSessionRequired;
  }
  if (client.requireDpop) metadata.dpop_bound_access_tokens = true;
  if (client.certificateBoundTokens) metadata.tls_client_certificate_bound_access_tokens = true;
  if (client.requirePar) metadata.require_pushed_authorization_requests = true;
  if (client.requireSignedRequestObject) metadata.require_signed_request_object = true;
  // Provisioned for every client (RFC 7591 §3.2.1): its ID tokens, and a JARM response or a JWT introspection
  // answer (asked for with response_mode=jwt, or Accept: application/token-introspection+jwt), are signed so.
  metadata.id_token_signed_response_alg = client.signingAlg;
  if (client.signedUserinfo) metadata.userinfo_signed_response_alg = client.signingAlg;
  metadata.authorization_signed_response_alg = client.signingAlg;
  metadata.introspection_signed_response_alg = client.signingAlg;
  Object.assign(metadata, encryptionMetadata(client.responseEncryption, client.signedUserinfo));
  metadata.subject_type = client.subjectType;
  if (client.sectorIdentifierUri) metadata.sector_identifier_uri = client.sectorIdentifierUri;
  return { ...metadata, ...description };
}
