/**
 * The `clients` and `client_secrets` tables: the applications that may ask us for tokens. Four presets cover
 * who uses us (README "Connect your app"):
 *
 * | type      | for                              | grants                               | authenticates with         |
 * |-----------|----------------------------------|--------------------------------------|----------------------------|
 * | `web`     | server-side web apps             | authorization_code, refresh_token    | a secret (or private_key_jwt) |
 * | `spa`     | single-page and mobile apps      | authorization_code (+PKCE), refresh_token | nothing (public client) |
 * | `service` | backend services, jobs           | client_credentials                   | a secret (or private_key_jwt) |
 * | `device`  | TVs, consoles, command-line tools | device_code (RFC 8628), refresh_token | nothing (public client), or a secret |
 *
 * A secret is generated here, returned once, and stored only as an HMAC (./secrets.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { roleName } from '../accounts/roles.js';
import type { AuditSink } from '../audit/audit-log.js';
import { ConflictError, InputError, NotFoundError, parseInput } from '../errors.js';
import { type KeysLocation, SIGNING_ALG, SIGNING_ALGS, SIGNING_ALGS_IN_WORDS, type SigningAlg, missingKeyProblem } from '../keys/signing-keys.js';
import { type Database, isUniqueViolation } from '../store/database.js';
import { deleteClientRecords } from '../store/grant-records.js';
import { run, statement } from '../store/prepared-statements.js';
import { ACCOUNT_CONSOLE_CLIENT_ID } from './account-console.js';
import {
  CERTIFICATE_BOUND_DESCRIPTION,
  MUTUAL_TLS_METHODS,
  type MutualTlsAvailability,
  ONE_PROOF_OF_POSSESSION,
  TLS_SUBJECT_METADATA,
  mutualTlsProblems,
  mutualTlsRefusal,
  mutualTlsUnavailable,
  tlsSubjectFields,
} from './client-certificates.js';
import { type AppLinks, webPage } from './app-links.js';
import { FAPI2_DESCRIPTION, FAPI_2_0, FAPI_PROFILE_METADATA, fapi2Problems } from './fapi.js';
import { ENCRYPTION_METADATA_NAMES, RESPONSE_ENCRYPTION_DESCRIPTION, type ResponseEncryption, encryptionMetadata, encryptionOf, responseEncryptionProblem, responseEncryptionSchema } from './response-encryption.js';
import { backchannelLogoutUriProblem } from './backchannel-logout-uris.js';
import { jwksProblem, jwksUriProblem, redirectUriProblem } from './redirect-uris.js';
import { SUBJECT_TYPES, type SubjectType, sectorDocumentProblem, sectorIdentifierUriProblem, sectorOf } from './sector-identifiers.js';
import { type Pepper, type StoredSecret, generateClientSecret, hashClientSecret, verifyClientSecret } from './secrets.js';

export const CLIENT_TYPES = ['web', 'spa', 'service', 'device'] as const;
export type ClientType = (typeof CLIENT_TYPES)[number];

/** The device authorization grant's grant type (RFC 8628 §3.4). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** Token exchange's grant type (RFC 8693 §2.1): a client with `tokenExchangeFrom` has it (src/oidc/token-exchange.ts). */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

const SECRET_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
const CONFIDENTIAL_METHODS = [...SECRET_METHODS, 'private_key_jwt', ...MUTUAL_TLS_METHODS] as const;
export const TOKEN_ENDPOINT_AUTH_METHODS = [...CONFIDENTIAL_METHODS, 'none'] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

/** Scopes a user-facing client may ask for unless it is registered with fewer. */
export const DEFAULT_USER_SCOPE = 'openid offline_access profile email roles groups';

export interface ClientRecord extends AppLinks {
  clientId: string;
  name: string;
  type: ClientType;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** Space-separated scopes the client may ask for ('' for a service: every scope of the API it names). */
  scope: string;
  /** Roles of the client itself, carried in its client-credentials tokens. */
  roles: string[];
  /** First-party clients skip the consent page. */
  firstParty: boolean;
  /** Further OIDC client metadata (jwks or jwks_uri for private_key_jwt). */
  metadata: Record<string, unknown>;
  /** Where a logout token is POSTed when a session the client took part in ends (Back-Channel Logout 1.0), or null. */
  backchannelLogoutUri: string | null;
  /** Whether those logout tokens, and the client's ID tokens, carry the session id `sid`. */
  backchannelLogoutSessionRequired: boolean;
  /** The token endpoint refuses the client's requests without a DPoP proof (RFC 9449 §5.2). */
  requireDpop: boolean;
  /** Its access tokens are bound to its TLS client certificate, and it must present one (RFC 8705 §3). */
  certificateBoundTokens: boolean;
  /** The authorization endpoint refuses the client's requests unless pushed first (RFC 9126 §6). */
  requirePar: boolean;
  /** The authorization endpoint refuses the client's requests unless signed with its key (RFC 9101 §10.5, JAR). */
  requireSignedRequestObject: boolean;
  /** Its users sign in with two steps, password and an authenticator app's code (src/accounts/two-factor.ts). */
  requireMfa: boolean;
  /** Userinfo answers it with a JWT signed with our key (`userinfo_signed_response_alg`) instead of plain JSON. */
  signedUserinfo: boolean;
  /** What signs its ID tokens, and its signed userinfo, authorization and introspection responses (RS256 unless set). */
  signingAlg: SigningAlg;
  /** What those responses are encrypted to its key with (./response-encryption.ts), or null: signed only. */
  responseEncryption: ResponseEncryption | null;
  /** It follows the FAPI 2.0 Security Profile (./fapi.ts): checked at registration, enforced when it is served. */
  fapi2: boolean;
  /**
   * The APIs (indicators) whose users' access tokens it may exchange for tokens to other APIs (RFC 8693): it is
   * their back end, calling on for the user. Empty: it may not exchange tokens.
   */
  tokenExchangeFrom: string[];
  /** `pairwise`: its users' `sub` is its sector's own (./sector-identifiers.ts); `public`: their account id. */
  subjectType: SubjectType;
  /** Where the JSON list of its redirect URIs is, naming its sector (pairwise clients on more than one host). */
  sectorIdentifierUri: string | null;
  /** The sector its pairwise subjects are made for, fixed at registration; null for a public client. */
  pairwiseSector: string | null;
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** Unexpired secret hashes (two during a rollover). */
  secrets: StoredSecret[];
}

interface ClientRow {
  client_id: string;
  name: string;
  type: ClientType;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  scope: string;
  roles: string[];
  first_party: boolean;
  metadata: Record<string, unknown>;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** Row changes as knex writes them: jsonb as JSON text, which both drivers (pg, PGlite) take alike. */
type ClientRowChanges = Omit<Partial<ClientRow>, 'metadata'> & { metadata?: string };

/** A secret as FIND_WITH_SECRETS aggregates it: the expiry in epoch milliseconds. */
interface AggregatedSecret {
  pepper_kid: string;
  hash: string;
  expires_at_ms: number | null;
}

/**
 * A client and its unexpired secrets, newest first, in one prepared statement: a worker reads each client it
 * serves once per CLIENT_CACHE_TTL_MS, and with many clients in use that is a good share of token requests (two
 * knex queries, each planned anew, before). $1: the client id; $2: now. The columns are named, so that a column
 * a later migration adds cannot change the prepared statement's result.
 */
const FIND_WITH_SECRETS = statement(
  'client_find_with_secrets',
  `select client.client_id, client.name, client.type, client.redirect_uris, client.post_logout_redirect_uris,
          client.grant_types, client.token_endpoint_auth_method, client.scope, client.roles, client.first_party,
          client.metadata, client.disabled_at, client.created_at, client.updated_at,
          coalesce((
            select jsonb_agg(jsonb_build_object(
                     'pepper_kid', secret.pepper_kid,
                     'hash', secret.hash,
                     'expires_at_ms', floor(extract(epoch from secret.expires_at) * 1000)
                   ) order by secret.created_at desc)
            from client_secrets as secret
            where secret.client_id = client.client_id
              and (secret.expires_at is null or secret.expires_at > $2::timestamptz)
          ), '[]'::jsonb) as secrets
   from clients as client
   where client.client_id = $1`,
);

const scopeToken = /^[\x21\x23-\x5b\x5d-\x7e]+$/; // RFC 6749 §3.3 scope-token

/**
 * A scope string, tidied: any run of whitespace (tabs, newlines) splits it and each token is kept once, joined
 * by one space, as RFC 6749 §3.3 writes it and as everything that reads `clients.scope` splits it.
 */
const scopeSchema = z
  .string()
  .transform((scope) => [...new Set(scope.split(/\s+/).filter(Boolean))])
  .refine((tokens) => tokens.every((token) => scopeToken.test(token)), 'scope holds an invalid character')
  .transform((tokens) => tokens.join(' '));

/** The longest the old secrets may keep working after a rotation. */
export const MAX_KEEP_OLD_SECONDS = 90 * 86_400;

const TOKEN_EXCHANGE_DESCRIPTION =
  'the APIs (resource indicators) whose users’ access tokens this client, their back end, may exchange for access tokens to other APIs it is registered for (RFC 8693 token exchange); web and service clients; [] turns it off';
const TOKEN_EXCHANGE_TYPES: readonly ClientType[] = ['web', 'service'];
const TOKEN_EXCHANGE_REFUSAL = 'token exchange is for web and service clients: it needs a client that authenticates (a secret or private_key_jwt)';
/** An API's indicator as the apis table holds it (src/apis/apis.ts checks how it is written). */
const tokenExchangeFrom = z.array(z.url({ protocol: /^https?$/, error: 'an API is named by its resource indicator, an http(s) URL' })).max(50);

const SIGNED_REQUEST_DESCRIPTION =
  'refuse authorization requests not sent as a request object signed with its key (RFC 9101, JAR): web and spa clients with jwks or jwksUri';
const SIGNED_REQUEST_NEEDS_KEYS = 'a request object is checked with the client’s public keys: give jwks or jwksUri too';

const SIGNED_USERINFO_DESCRIPTION =
  'userinfo answers it with a JWT signed with the server’s key (userinfo_signed_response_alg, in signingAlg: iss, aud and the claims), which it can keep or pass on as proof; not for service clients';
const SIGNING_ALG_DESCRIPTION =
  'what signs its ID tokens and the responses signed for it (userinfo, JARM, introspection): RS256, or PS256, ES256 or EdDSA where keys/ holds a key for it (`authz keys rotate --alg <alg>`)';
const USERINFO_FOR_SERVICE = 'a service client signs no users in, so it has no userinfo to sign';

const REQUIRE_MFA_DESCRIPTION = 'its users sign in with two steps (password and an authenticator app’s code), whatever the request’s acr_values; not for service clients';
const MFA_FOR_SERVICE = 'a service client signs no users in, so there is no sign-in to add a second step to';

export const newClientSchema = z
  .strictObject({
    type: z.enum(CLIENT_TYPES, { error: 'type must be web, spa, service or device' }),
    name: z.string().trim().min(1, 'a client needs a name').max(200),
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._~-]{2,127}$/, 'a client id is 3–128 letters, digits, ".", "_", "~" or "-"')
      .refine((id) => id !== ACCOUNT_CONSOLE_CLIENT_ID, `${ACCOUNT_CONSOLE_CLIENT_ID} is the account page's own client`)
      .optional(),
    redirectUris: z.array(z.string()).default([]),
    postLogoutRedirectUris: z.array(z.string()).default([]),
    tokenEndpointAuthMethod: z.enum(CONFIDENTIAL_METHODS).optional(),
    scope: scopeSchema.optional(),
    roles: z.array(roleName).max(100).default([]),
    firstParty: z.boolean().default(false),
    /** The resource-owner password grant, for legacy first-party apps only (discouraged, RFC 9700 §2.4). */
    allowPasswordGrant: z.boolean().default(false),
    /** A JWK Set (`{ keys: [...] }`) or its URL, for private_key_jwt. */
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    jwksUri: z.url().optional(),
    /** Where to POST logout tokens (Back-Channel Logout 1.0); web clients only. */
    backchannelLogoutUri: z.string().min(1, 'an empty string is no URL').optional(),
    /** Whether logout tokens carry `sid`; true unless set (as Keycloak does): the app can end just that session. */
    backchannelLogoutSessionRequired: z.boolean().optional(),
    requireDpop: z.boolean().default(false).meta({ description: 'refuse token requests without a DPoP proof (RFC 9449 §5.2)' }),
    certificateBoundTokens: z.boolean().default(false).meta({ description: CERTIFICATE_BOUND_DESCRIPTION }),
    ...tlsSubjectFields,
    requirePar: z.boolean().default(false).meta({ description: 'refuse authorization requests not pushed first (RFC 9126 §6); not for service clients' }),
    requireSignedRequestObject: z.boolean().default(false).meta({ description: SIGNED_REQUEST_DESCRIPTION }),
    requireMfa: z.boolean().default(false).meta({ description: REQUIRE_MFA_DESCRIPTION }),
    signedUserinfo: z.boolean().default(false).meta({ description: SIGNED_USERINFO_DESCRIPTION }),
    signingAlg: z.enum(SIGNING_ALGS, { error: `signingAlg must be ${SIGNING_ALGS_IN_WORDS}` }).default(SIGNING_ALG).meta({ description: SIGNING_ALG_DESCRIPTION }),
    responseEncryption: responseEncryptionSchema.optional(),
    fapi2: z.boolean().default(false).meta({ description: FAPI2_DESCRIPTION }),
    clientUri: webPage.optional().meta({ description: 'the app’s home page, linked on the consent page' }),
    policyUri: webPage.optional().meta({ description: 'its privacy policy, linked on the consent page' }),
    tosUri: webPage.optional().meta({ description: 'its terms of service, linked on the consent page' }),
    tokenExchangeFrom: tokenExchangeFrom.default([]).meta({ description: TOKEN_EXCHANGE_DESCRIPTION }),
    nativeApp: z
      .boolean()
      .default(false)
      .meta({ description: 'an spa client that is a native app (RFC 8252: desktop, mobile, command line): it may come back to any loopback port, and people are asked for consent each time; set at registration only' }),
    subjectType: z
      .enum(SUBJECT_TYPES, { error: 'subjectType must be public or pairwise' })
      .default('public')
      .meta({ description: 'pairwise: its users get a `sub` of their own for this app’s sector (OpenID Connect Core §8), so apps cannot match them up; set at registration only' }),
    sectorIdentifierUri: z
      .string()
      .optional()
      .meta({ description: 'for a pairwise client with redirect URIs on more than one host: an https URL answering a JSON array of them all; its host is the sector' }),
  })
  .superRefine((input, ctx) => {
    const redirected = isRedirected(input.type);
    if (redirected && input.redirectUris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: `a ${input.type} client needs at least one redirect URI` });
    }
    if (!redirected && (input.redirectUris.length > 0 || input.postLogoutRedirectUris.length > 0)) {
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: NO_REDIRECTS[input.type] });
    }
    for (const [field, uris] of [
      ['redirectUris', input.redirectUris],
      ['postLogoutRedirectUris', input.postLogoutRedirectUris],
    ] as const) {
      for (const uri of uris) {
        const problem = redirectUriProblem(uri, { allowCustomScheme: input.type === 'spa' });
        if (problem) ctx.addIssue({ code: 'custom', path: [field], message: problem });
      }
    }
    if (input.type === 'spa' && input.tokenEndpointAuthMethod) {
      ctx.addIssue({ code: 'custom', path: ['tokenEndpointAuthMethod'], message: 'an spa client is public: it cannot hold a secret or a key' });
    }
    if (input.allowPasswordGrant && (!input.firstParty || !redirected)) {
      ctx.addIssue({ code: 'custom', path: ['allowPasswordGrant'], message: 'the password grant is only for first-party web or spa clients' });
    }
    for (const problem of mutualTlsProblems(input)) ctx.addIssue({ code: 'custom', path: [problem.path], message: problem.message });
    const keysProblem = input.jwks && jwksProblem(input.jwks);
    if (keysProblem) ctx.addIssue({ code: 'custom', path: ['jwks'], message: keysProblem });
    const keysUriProblem = input.jwksUri && jwksUriProblem(input.jwksUri, { production: false });
    if (keysUriProblem) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: keysUriProblem });
    if (input.tokenEndpointAuthMethod === 'private_key_jwt' && !input.jwks && !input.jwksUri) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'private_key_jwt needs the client’s public keys (jwks or jwksUri)' });
    }
    const backchannelRefusal = input.backchannelLogoutUri === undefined ? undefined : backchannelLogoutRefusal(input.type);
    if (backchannelRefusal) ctx.addIssue({ code: 'custom', path: ['backchannelLogoutUri'], message: backchannelRefusal });
    if (input.backchannelLogoutSessionRequired !== undefined && input.backchannelLogoutUri === undefined) {
      ctx.addIssue({ code: 'custom', path: ['backchannelLogoutSessionRequired'], message: 'applies to a back-channel logout URI: give backchannelLogoutUri too' });
    }
    const parRefusal = input.requirePar ? parRefusalFor(input.type) : undefined;
    if (parRefusal) ctx.addIssue({ code: 'custom', path: ['requirePar'], message: parRefusal });
    const signedRequestRefusal = input.requireSignedRequestObject ? signedRequestRefusalFor(input.type, Boolean(input.jwks || input.jwksUri)) : undefined;
    if (signedRequestRefusal) ctx.addIssue({ code: 'custom', path: ['requireSignedRequestObject'], message: signedRequestRefusal });
    if (input.requireMfa && input.type === 'service') ctx.addIssue({ code: 'custom', path: ['requireMfa'], message: MFA_FOR_SERVICE });
    if (input.signedUserinfo && input.type === 'service') ctx.addIssue({ code: 'custom', path: ['signedUserinfo'], message: USERINFO_FOR_SERVICE });
    const encryptionProblem = input.responseEncryption && responseEncryptionProblem(input.responseEncryption, input);
    if (encryptionProblem) ctx.addIssue({ code: 'custom', path: ['responseEncryption'], message: encryptionProblem });
    if (input.fapi2) for (const message of fapi2Problems(input)) ctx.addIssue({ code: 'custom', path: ['fapi2'], message });
    if (input.tokenExchangeFrom.length > 0 && !TOKEN_EXCHANGE_TYPES.includes(input.type)) {
      ctx.addIssue({ code: 'custom', path: ['tokenExchangeFrom'], message: TOKEN_EXCHANGE_REFUSAL });
    }
    if (input.nativeApp && input.type !== 'spa') ctx.addIssue({ code: 'custom', path: ['nativeApp'], message: 'a native app is a public client: register it as an spa client' });
    const pairwiseRefusal = input.subjectType === 'pairwise' ? PAIRWISE_REFUSALS[input.type] : undefined;
    if (pairwiseRefusal) ctx.addIssue({ code: 'custom', path: ['subjectType'], message: pairwiseRefusal });
    if (input.sectorIdentifierUri !== undefined && input.subjectType !== 'pairwise') {
      ctx.addIssue({ code: 'custom', path: ['sectorIdentifierUri'], message: 'names the sector of a pairwise client: give subjectType pairwise too' });
    }
  });

/**
 * A service client signs no users in. A device client's sector would be its jwks_uri's host, and OpenID Connect
 * asks pairwise device clients to authenticate with private_key_jwt: not offered until someone needs it.
 */
const PAIRWISE_REFUSALS: Partial<Record<ClientType, string>> = {
  service: 'a service client signs no users in, so it has no subjects to pair',
  device: 'pairwise subjects are for web and spa clients',
};

/** Web apps and SPAs get their codes at a redirect URI; services and devices are never redirected back to. */
const isRedirected = (type: ClientType) => type === 'web' || type === 'spa';

/** Why a client that is never redirected back to takes no redirect URIs. */
const NO_REDIRECTS: Record<ClientType, string> = {
  web: '',
  spa: '',
  service: 'a service client signs no users in and takes no redirect URIs',
  device: 'a device client signs its user in on another screen (RFC 8628) and is never redirected back to: it takes no redirect URIs',
};

/**
 * PAR is a way to send an authorization request, and a service (client credentials) sends none: requiring it
 * would change nothing, and saying so beats a policy that looks like protection.
 */
const PAR_FOR_SERVICE = 'a service client sends no authorization requests, so there is nothing to push (PAR is for web and spa clients)';
const PAR_FOR_DEVICE = 'a device client sends no authorization requests (its user enters a code instead), so there is nothing to push (PAR is for web and spa clients)';

function parRefusalFor(type: ClientType): string | undefined {
  if (type === 'service') return PAR_FOR_SERVICE;
  if (type === 'device') return PAR_FOR_DEVICE;
  return undefined;
}

/** A request object is an authorization request (so, as PAR, not for services or devices), signed with a key of the client's. */
function signedRequestRefusalFor(type: ClientType, hasKeys: boolean): string | undefined {
  if (type === 'service') return 'a service client sends no authorization requests, so there is nothing to sign (request objects are for web and spa clients)';
  if (type === 'device') return 'a device client sends no authorization requests (its user enters a code instead), so there is nothing to sign (request objects are for web and spa clients)';
  return hasKeys ? undefined : SIGNED_REQUEST_NEEDS_KEYS;
}

/**
 * Back-channel logout needs a server of the client's own for us to call, and a session the client takes part in.
 * A `web` client has both. An `spa` runs in a browser or on a device (its back end, if it has one, registers as
 * a web client); Keycloak, too, offers it to confidential clients. Allowing more later breaks nobody.
 */
function backchannelLogoutRefusal(type: ClientType): string | undefined {
  if (type === 'spa') return 'back-channel logout is for web clients: an spa runs in the browser or on a device, with no server for us to call (register its back end as a web client)';
  if (type === 'service') return 'a service client signs no users in, so it has no sessions to be logged out of';
  if (type === 'device') return 'back-channel logout is for web clients: a device client runs on the device, with no server for us to call';
  return undefined;
}

/** `metadata` with the back-channel logout registration, under the spec's names (as oidc-provider reads them). */
function withBackchannelLogout(metadata: Record<string, unknown>, uri: string | null, sessionRequired: boolean): Record<string, unknown> {
  return uri ? { ...metadata, backchannel_logout_uri: uri, backchannel_logout_session_required: sessionRequired } : metadata;
}

/** `metadata` with the client's policies under the spec's names (as oidc-provider reads them), kept only when on. */
function withPolicies(metadata: Record<string, unknown>, policies: ClientPolicies): Record<string, unknown> {
  return {
    ...metadata,
    ...(policies.requireDpop ? { dpop_bound_access_tokens: true } : {}),
    ...(policies.certificateBoundTokens ? { tls_client_certificate_bound_access_tokens: true } : {}),
    ...(policies.requirePar ? { require_pushed_authorization_requests: true } : {}),
    ...(policies.requireSignedRequestObject ? { require_signed_request_object: true } : {}),
    // Ours, not oidc-provider's (no registration metadata says "always two steps"): our login check reads it.
    ...(policies.requireMfa ? { require_mfa: true } : {}),
    ...(policies.signedUserinfo ? { userinfo_signed_response_alg: policies.signingAlg } : {}),
    ...(policies.fapi2 ? { [FAPI_PROFILE_METADATA]: FAPI_2_0 } : {}),
    // Kept only when not the default, under the spec's names; oidc-provider applies each where it signs.
    ...(policies.signingAlg !== SIGNING_ALG
      ? { id_token_signed_response_alg: policies.signingAlg, authorization_signed_response_alg: policies.signingAlg, introspection_signed_response_alg: policies.signingAlg }
      : {}),
    ...encryptionMetadata(policies.responseEncryption ?? null, policies.signedUserinfo),
    // The consent page's links (./app-links.ts), under the spec's names.
    ...(policies.clientUri ? { client_uri: policies.clientUri } : {}),
    ...(policies.policyUri ? { policy_uri: policies.policyUri } : {}),
    ...(policies.tosUri ? { tos_uri: policies.tosUri } : {}),
    // Ours too: which APIs' tokens the token-exchange grant takes from this client.
    ...(policies.tokenExchangeFrom.length > 0 ? { token_exchange_from: [...new Set(policies.tokenExchangeFrom)] } : {}),
  };
}

type ClientPolicies = Pick<
  ClientRecord,
  'requireDpop' | 'certificateBoundTokens' | 'requirePar' | 'requireSignedRequestObject' | 'requireMfa' | 'signedUserinfo' | 'signingAlg' | 'fapi2' | 'tokenExchangeFrom'
> &
  Partial<AppLinks> & { responseEncryption?: ResponseEncryption | null };

/** The grant types with token exchange's as `tokenExchangeFrom` has it: on while it names an API. */
function withTokenExchangeGrant(grantTypes: readonly string[], from: readonly string[]): string[] {
  const others = grantTypes.filter((grant) => grant !== TOKEN_EXCHANGE_GRANT);
  return from.length > 0 ? [...others, TOKEN_EXCHANGE_GRANT] : others;
}

/** `metadata` with a pairwise client's subject type and sector under the spec's names (and ours for the sector). */
function withSubjectType(metadata: Record<string, unknown>, subject: Pick<ClientRecord, 'subjectType' | 'sectorIdentifierUri' | 'pairwiseSector'>) {
  if (subject.subjectType !== 'pairwise') return metadata;
  return {
    ...metadata,
    subject_type: 'pairwise',
    ...(subject.sectorIdentifierUri ? { sector_identifier_uri: subject.sectorIdentifierUri } : {}),
    // Ours: the sector fixed at registration, which src/oidc/pairwise-subjects.ts makes subjects for.
    pairwise_sector: subject.pairwiseSector,
  };
}

export type NewClient = z.input<typeof newClientSchema>;

/** What an administrator may change on a registered client (its type and authentication stay as created). */
export const clientChangesSchema = z.strictObject({
  name: z.string().trim().min(1, 'a client needs a name').max(200).optional(),
  redirectUris: z.array(z.string()).optional(),
  postLogoutRedirectUris: z.array(z.string()).optional(),
  scope: scopeSchema.optional(),
  roles: z.array(roleName).max(100).optional(),
  firstParty: z.boolean().optional(),
  /** null removes it. */
  backchannelLogoutUri: z.string().min(1, 'an empty string is no URL (null removes it)').nullable().optional(),
  backchannelLogoutSessionRequired: z.boolean().optional(),
  requireDpop: z.boolean().optional().meta({ description: 'refuse token requests without a DPoP proof (RFC 9449 §5.2)' }),
  certificateBoundTokens: z.boolean().optional().meta({ description: CERTIFICATE_BOUND_DESCRIPTION }),
  requirePar: z.boolean().optional().meta({ description: 'refuse authorization requests not pushed first (RFC 9126 §6); not for service clients' }),
  requireSignedRequestObject: z.boolean().optional().meta({ description: SIGNED_REQUEST_DESCRIPTION }),
  clientUri: webPage.nullable().optional().meta({ description: 'the app’s home page, linked on the consent page (null removes it)' }),
  policyUri: webPage.nullable().optional().meta({ description: 'its privacy policy, linked on the consent page (null removes it)' }),
  tosUri: webPage.nullable().optional().meta({ description: 'its terms of service, linked on the consent page (null removes it)' }),
  requireMfa: z.boolean().optional().meta({ description: REQUIRE_MFA_DESCRIPTION }),
  signedUserinfo: z.boolean().optional().meta({ description: SIGNED_USERINFO_DESCRIPTION }),
  signingAlg: z.enum(SIGNING_ALGS, { error: `signingAlg must be ${SIGNING_ALGS_IN_WORDS}` }).optional().meta({ description: SIGNING_ALG_DESCRIPTION }),
  responseEncryption: responseEncryptionSchema.nullable().optional().meta({ description: `${RESPONSE_ENCRYPTION_DESCRIPTION} (null: signed only)` }),
  fapi2: z.boolean().optional().meta({ description: FAPI2_DESCRIPTION }),
  tokenExchangeFrom: tokenExchangeFrom.optional().meta({ description: TOKEN_EXCHANGE_DESCRIPTION }),
});

export type ClientChanges = z.input<typeof clientChangesSchema>;

function presetFor(input: z.output<typeof newClientSchema>) {
  switch (input.type) {
    case 'web':
      return { grantTypes: ['authorization_code', 'refresh_token'], authMethod: input.tokenEndpointAuthMethod ?? 'client_secret_basic', scope: DEFAULT_USER_SCOPE };
    case 'spa':
      return { grantTypes: ['authorization_code', 'refresh_token'], authMethod: 'none' as const, scope: DEFAULT_USER_SCOPE };
    case 'service':
      return { grantTypes: ['client_credentials'], authMethod: input.tokenEndpointAuthMethod ?? 'client_secret_basic', scope: '' };
    case 'device':
      // Public unless asked otherwise: an app shipped to devices cannot keep a secret (RFC 8628 §5.6).
      return { grantTypes: [DEVICE_CODE_GRANT, 'refresh_token'], authMethod: input.tokenEndpointAuthMethod ?? ('none' as const), scope: DEFAULT_USER_SCOPE };
  }
}

function toRecord(row: ClientRow, secrets: StoredSecret[]): ClientRecord {
  // Kept in `metadata`, like the client's other optional OIDC metadata; shown as fields of their own.
  const {
    backchannel_logout_uri: backchannelUri,
    backchannel_logout_session_required: sessionRequired,
    dpop_bound_access_tokens: requireDpop,
    tls_client_certificate_bound_access_tokens: certificateBound,
    require_pushed_authorization_requests: requirePar,
    require_signed_request_object: requireSignedRequestObject,
    require_mfa: requireMfa,
    userinfo_signed_response_alg: userinfoAlg,
    id_token_signed_response_alg: idTokenAlg,
    authorization_signed_response_alg: _authorizationAlg,
    introspection_signed_response_alg: _introspectionAlg,
    [FAPI_PROFILE_METADATA]: fapiProfile,
    token_exchange_from: exchangeFrom,
    client_uri: clientUri,
    policy_uri: policyUri,
    tos_uri: tosUri,
    subject_type: subjectType,
    sector_identifier_uri: sectorIdentifierUri,
    pairwise_sector: pairwiseSector,
    ...rest
  } = row.metadata ?? {};
  const responseEncryption = encryptionOf(rest);
  const metadata = Object.fromEntries(Object.entries(rest).filter(([name]) => !ENCRYPTION_METADATA_NAMES.includes(name)));
  return {
    clientId: row.client_id,
    name: row.name,
    type: row.type,
    redirectUris: row.redirect_uris ?? [],
    postLogoutRedirectUris: row.post_logout_redirect_uris ?? [],
    grantTypes: row.grant_types,
    tokenEndpointAuthMethod: row.token_endpoint_auth_method,
    scope: row.scope,
    roles: row.roles ?? [],
    firstParty: row.first_party,
    metadata,
    backchannelLogoutUri: typeof backchannelUri === 'string' ? backchannelUri : null,
    backchannelLogoutSessionRequired: sessionRequired === true,
    requireDpop: requireDpop === true,
    certificateBoundTokens: certificateBound === true,
    requirePar: requirePar === true,
    requireSignedRequestObject: requireSignedRequestObject === true,
    requireMfa: requireMfa === true,
    signedUserinfo: typeof userinfoAlg === 'string',
    signingAlg: SIGNING_ALGS.find((alg) => alg === idTokenAlg) ?? SIGNING_ALG,
    responseEncryption,
    fapi2: fapiProfile === FAPI_2_0,
    clientUri: typeof clientUri === 'string' ? clientUri : null,
    policyUri: typeof policyUri === 'string' ? policyUri : null,
    tosUri: typeof tosUri === 'string' ? tosUri : null,
    tokenExchangeFrom: Array.isArray(exchangeFrom) ? exchangeFrom.filter((api): api is string => typeof api === 'string') : [],
    subjectType: subjectType === 'pairwise' ? 'pairwise' : 'public',
    sectorIdentifierUri: typeof sectorIdentifierUri === 'string' ? sectorIdentifierUri : null,
    pairwiseSector: subjectType === 'pairwise' && typeof pairwiseSector === 'string' ? pairwiseSector : null,
    disabledAt: row.disabled_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    secrets,
  };
}


export interface CreatedClient {
  client: ClientRecord;
  /** The plaintext secret, for confidential clients using a secret. Shown once; only its HMAC is stored. */
  secret?: string;
}

export interface ClientRepositoryOptions {
  peppers: Pepper[];
  /** Production refuses plain-http (loopback) redirect URIs except for native apps (spa/mobile, RFC 8252 §7.3). */
  production?: boolean;
  /** Where administrative changes are recorded, and who makes them (`cli`, `admin-api`). */
  audit?: AuditSink;
  actor?: string;
  /** A sector identifier URI may be on a private network (ALLOW_PRIVATE_NETWORK_CALLS); default: outside production. */
  allowPrivateNetworkCalls?: boolean;
  /** Mutual TLS is on (MTLS_CERTIFICATE_HEADER), with authorities for `tls_client_auth` (MTLS_TRUSTED_CA_FILE); unset: off. */
  mutualTls?: MutualTlsAvailability;
  /** Where the signing keys are, to refuse a signingAlg no key signs with; unset: not checked. */
  signingKeys?: KeysLocation;
}

/** The options a server's configuration gives a repository acting for `actor` (`cli`, `admin-api`, …). */
export function clientRepositoryOptions(
  config: {
    clientSecretPeppers: Pepper[];
    production: boolean;
    allowPrivateNetworkCalls: boolean;
    mutualTls?: { trustedAuthorities: readonly unknown[] } | undefined;
    keys: { dir: string; passphrase?: string };
  },
  audit: AuditSink,
  actor: string,
): ClientRepositoryOptions {
  const mutualTls = config.mutualTls && { trustedAuthorities: config.mutualTls.trustedAuthorities.length > 0 };
  return {
    peppers: config.clientSecretPeppers,
    production: config.production,
    audit,
    actor,
    allowPrivateNetworkCalls: config.allowPrivateNetworkCalls,
    mutualTls,
    signingKeys: { dir: config.keys.dir, passphrase: config.keys.passphrase },
  };
}

export class ClientRepository {
  readonly #peppers: Pepper[];
  readonly #audit?: AuditSink;
  readonly #actor: string;

  constructor(
    private readonly db: Database,
    private readonly options: ClientRepositoryOptions,
  ) {
    this.#peppers = options.peppers;
    this.#audit = options.audit;
    this.#actor = options.actor ?? 'server';
  }

  get #production(): boolean {
    return this.options.production === true;
  }

  #record(type: string, clientId: string, detail: Record<string, unknown> = {}): void {
    this.#audit?.record({ type, outcome: 'success', clientId, detail: { by: this.#actor, ...detail } });
  }

  /** The pepper that hashes new secrets: the first listed. */
  get #currentPepper(): Pepper {
    const pepper = this.#peppers[0];
    if (!pepper) throw new Error('no client-secret pepper is configured (CLIENT_SECRET_PEPPERS)');
    return pepper;
  }

  async create(input: NewClient): Promise<CreatedClient> {
    const client = parseInput(newClientSchema, input);
    if (this.options.production && client.type === 'web') {
      const plain = [...client.redirectUris, ...client.postLogoutRedirectUris].find((uri) => uri.startsWith('http:'));
      if (plain) throw new InputError(`redirectUris: ${plain} must use https in production (plain http on localhost is for development and native apps)`);
    }
    const keysUriProblem = client.jwksUri && jwksUriProblem(client.jwksUri, { production: this.#production });
    if (keysUriProblem) throw new InputError(`jwksUri: ${keysUriProblem}`);
    const mutualTlsOff = mutualTlsRefusal(this.options.mutualTls, client);
    if (mutualTlsOff) throw new InputError(mutualTlsOff);
    const backchannelProblem = client.backchannelLogoutUri && backchannelLogoutUriProblem(client.backchannelLogoutUri, { production: this.#production });
    if (backchannelProblem) throw new InputError(`backchannelLogoutUri: ${backchannelProblem}`);
    const pairwiseSector = client.subjectType === 'pairwise' ? await this.#checkedSector(client.sectorIdentifierUri, client.redirectUris) : null;
    await this.#checkApisExist(client.tokenExchangeFrom);
    await this.#checkSigningAlg(client.signingAlg);
    const preset = presetFor(client);
    const clientId = client.clientId ?? randomBytes(16).toString('base64url');
    const secret = (SECRET_METHODS as readonly string[]).includes(preset.authMethod) ? generateClientSecret() : undefined;
    const subject = { subjectType: client.subjectType, sectorIdentifierUri: client.sectorIdentifierUri ?? null, pairwiseSector };
    const metadata = withSubjectType(withPolicies(withBackchannelLogout({}, client.backchannelLogoutUri ?? null, client.backchannelLogoutSessionRequired ?? true), client), subject);
    if (client.jwks) metadata.jwks = client.jwks;
    if (client.jwksUri) metadata.jwks_uri = client.jwksUri;
    // Under the spec's name, where oidc-provider reads it (src/oidc/client-adapter.ts); kept by every update.
    if (client.nativeApp) metadata.application_type = 'native';
    for (const [field, property] of Object.entries(TLS_SUBJECT_METADATA)) {
      const value = client[field as keyof typeof TLS_SUBJECT_METADATA];
      if (value !== undefined) metadata[property] = value;
    }
    try {
      await this.db.transaction(async (trx) => {
        await trx('clients').insert({
          client_id: clientId,
          name: client.name,
          type: client.type,
          redirect_uris: client.redirectUris,
          post_logout_redirect_uris: client.postLogoutRedirectUris,
          grant_types: withTokenExchangeGrant(client.allowPasswordGrant ? [...preset.grantTypes, 'password'] : preset.grantTypes, client.tokenExchangeFrom),
          token_endpoint_auth_method: preset.authMethod,
          scope: client.scope ?? preset.scope,
          roles: client.roles,
          first_party: client.firstParty,
          metadata: JSON.stringify(metadata),
        });
        if (secret) await trx('client_secrets').insert(this.#secretRow(clientId, secret, null));
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`a client with the id ${clientId} already exists`);
      throw error;
    }
    this.#record('client_created', clientId, { type: client.type, firstParty: client.firstParty, ...(pairwiseSector ? { pairwiseSector } : {}) });
    return { client: await this.require(clientId), secret };
  }

  async find(clientId: string, now = new Date()): Promise<ClientRecord | undefined> {
    const [row] = await run<ClientRow & { secrets: AggregatedSecret[] }>(this.db, FIND_WITH_SECRETS, [clientId, now]);
    if (!row) return undefined;
    const secrets = row.secrets.map(({ pepper_kid, hash, expires_at_ms }) => ({
      pepperKid: pepper_kid,
      hash,
      expiresAt: expires_at_ms === null ? null : new Date(expires_at_ms),
    }));
    return toRecord(row, secrets);
  }

  async require(clientId: string): Promise<ClientRecord> {
    const client = await this.find(clientId);
    if (!client) throw new NotFoundError(`no client ${clientId}`);
    return client;
  }

  async list(): Promise<ClientRecord[]> {
    const rows = await this.db<ClientRow>('clients').orderBy('created_at').orderBy('client_id');
    return rows.map((row) => toRecord(row, []));
  }

  async anyWithGrantType(grantType: string): Promise<boolean> {
    const row = await this.db('clients').first('client_id').whereRaw('? = any(grant_types)', [grantType]).whereNull('disabled_at');
    return row !== undefined;
  }

  /** Checks a presented secret against the client's unexpired hashes (see ./secrets.ts). */
  verifySecret(client: ClientRecord, presented: string): boolean {
    return verifyClientSecret(presented, client.secrets, this.#peppers);
  }

  /**
   * Issues a new secret. The old ones keep working for `keepOldForSeconds` (0: they stop at once), so the
   * application can be redeployed with the new secret before the old one lapses.
   */
  async rotateSecret(clientId: string, keepOldForSeconds: number, now = new Date()): Promise<{ secret: string; oldSecretsExpireAt: Date }> {
    const client = await this.require(clientId);
    if (!(SECRET_METHODS as readonly string[]).includes(client.tokenEndpointAuthMethod)) {
      throw new InputError(`client ${clientId} does not authenticate with a secret (${client.tokenEndpointAuthMethod})`);
    }
    if (!Number.isInteger(keepOldForSeconds) || keepOldForSeconds < 0 || keepOldForSeconds > MAX_KEEP_OLD_SECONDS) {
      throw new InputError(`the old secrets may keep working 0 to ${MAX_KEEP_OLD_SECONDS / 86_400} days (${MAX_KEEP_OLD_SECONDS} seconds)`);
    }
    const secret = generateClientSecret();
    const oldSecretsExpireAt = new Date(now.getTime() + keepOldForSeconds * 1000);
    await this.db.transaction(async (trx) => {
      await trx('client_secrets')
        .where({ client_id: clientId })
        .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', oldSecretsExpireAt))
        .update({ expires_at: oldSecretsExpireAt });
      await trx('client_secrets').insert(this.#secretRow(clientId, secret, null));
      await trx('clients').where({ client_id: clientId }).update({ updated_at: now });
    });
    this.#record('client_secret_rotated', clientId, { oldSecretsExpireAt: oldSecretsExpireAt.toISOString() });
    return { secret, oldSecretsExpireAt };
  }

  /**
   * Changes name, redirect URIs, scope, roles, first-party status, back-channel logout registration or the DPoP
   * and PAR policies, with the same checks as at creation.
   */
  async update(clientId: string, input: ClientChanges): Promise<ClientRecord> {
    const changes = parseInput(clientChangesSchema, input);
    const client = await this.require(clientId);
    const redirectUris = changes.redirectUris ?? client.redirectUris;
    const postLogoutRedirectUris = changes.postLogoutRedirectUris ?? client.postLogoutRedirectUris;
    const problems: string[] = [];
    const redirected = isRedirected(client.type);
    if (redirected && redirectUris.length === 0) problems.push(`redirectUris: a ${client.type} client needs at least one redirect URI`);
    if (!redirected && (redirectUris.length > 0 || postLogoutRedirectUris.length > 0)) problems.push(`redirectUris: ${NO_REDIRECTS[client.type]}`);
    for (const [field, uris] of [
      ['redirectUris', changes.redirectUris ?? []],
      ['postLogoutRedirectUris', changes.postLogoutRedirectUris ?? []],
    ] as const) {
      for (const uri of uris) {
        const problem = redirectUriProblem(uri, { allowCustomScheme: client.type === 'spa' });
        if (problem) problems.push(`${field}: ${problem}`);
        else if (this.options.production && client.type === 'web' && uri.startsWith('http:')) problems.push(`${field}: ${uri} must use https in production`);
      }
    }
    if (changes.firstParty === false && client.grantTypes.includes('password')) {
      problems.push('firstParty: a client allowed the password grant must stay first-party');
    }
    const backchannel = this.#changedBackchannelLogout(client, changes);
    problems.push(...backchannel.problems);
    const parRefusal = changes.requirePar ? parRefusalFor(client.type) : undefined;
    if (parRefusal) problems.push(`requirePar: ${parRefusal}`);
    const hasKeys = client.metadata.jwks !== undefined || client.metadata.jwks_uri !== undefined;
    const signedRequestRefusal = changes.requireSignedRequestObject ? signedRequestRefusalFor(client.type, hasKeys) : undefined;
    if (signedRequestRefusal) problems.push(`requireSignedRequestObject: ${signedRequestRefusal}`);
    if (changes.requireMfa && client.type === 'service') problems.push(`requireMfa: ${MFA_FOR_SERVICE}`);
    if (changes.signedUserinfo && client.type === 'service') problems.push(`signedUserinfo: ${USERINFO_FOR_SERVICE}`);
    const encryptionProblem = changes.responseEncryption && responseEncryptionProblem(changes.responseEncryption, { jwks: client.metadata.jwks, jwksUri: client.metadata.jwks_uri });
    if (encryptionProblem) problems.push(`responseEncryption: ${encryptionProblem}`);
    if (changes.fapi2 ?? client.fapi2) {
      const settings = {
        ...client,
        redirectUris,
        requireDpop: changes.requireDpop ?? client.requireDpop,
        certificateBoundTokens: changes.certificateBoundTokens ?? client.certificateBoundTokens,
        signingAlg: changes.signingAlg ?? client.signingAlg,
      };
      for (const problem of fapi2Problems(settings)) problems.push(`fapi2: ${problem}`);
    }
    if (changes.tokenExchangeFrom?.length && !TOKEN_EXCHANGE_TYPES.includes(client.type)) problems.push(`tokenExchangeFrom: ${TOKEN_EXCHANGE_REFUSAL}`);
    const mutualTlsOff = changes.certificateBoundTokens ? mutualTlsUnavailable(this.options.mutualTls) : undefined;
    if (mutualTlsOff) problems.push(`certificateBoundTokens: ${mutualTlsOff}`);
    if ((changes.requireDpop ?? client.requireDpop) && (changes.certificateBoundTokens ?? client.certificateBoundTokens)) problems.push(`certificateBoundTokens: ${ONE_PROOF_OF_POSSESSION}`);
    if (problems.length > 0) throw new InputError(problems.join('; '));
    if (changes.tokenExchangeFrom) await this.#checkApisExist(changes.tokenExchangeFrom);
    if (changes.signingAlg) await this.#checkSigningAlg(changes.signingAlg);
    // New redirect URIs of a pairwise client must still fit its sector (its subjects stay those of the sector fixed at registration).
    if (client.subjectType === 'pairwise' && changes.redirectUris) await this.#checkedSector(client.sectorIdentifierUri ?? undefined, redirectUris);
    const row: ClientRowChanges = {};
    if (changes.name !== undefined) row.name = changes.name;
    if (changes.redirectUris !== undefined) row.redirect_uris = changes.redirectUris;
    if (changes.postLogoutRedirectUris !== undefined) row.post_logout_redirect_uris = changes.postLogoutRedirectUris;
    if (changes.scope !== undefined) row.scope = changes.scope;
    if (changes.roles !== undefined) row.roles = [...new Set(changes.roles)];
    if (changes.firstParty !== undefined) row.first_party = changes.firstParty;
    const policyChanged = [
      changes.requireDpop,
      changes.certificateBoundTokens,
      changes.requirePar,
      changes.requireSignedRequestObject,
      changes.requireMfa,
      changes.signedUserinfo,
      changes.signingAlg,
      changes.responseEncryption,
      changes.fapi2,
      changes.tokenExchangeFrom,
      changes.clientUri,
      changes.policyUri,
      changes.tosUri,
    ].some((value) => value !== undefined);
    if (backchannel.metadata || policyChanged) {
      // toRecord keeps these out of `metadata`, so whatever is written carries them all again.
      const policies: ClientPolicies = {
        requireDpop: changes.requireDpop ?? client.requireDpop,
        certificateBoundTokens: changes.certificateBoundTokens ?? client.certificateBoundTokens,
        requirePar: changes.requirePar ?? client.requirePar,
        requireSignedRequestObject: changes.requireSignedRequestObject ?? client.requireSignedRequestObject,
        requireMfa: changes.requireMfa ?? client.requireMfa,
        signedUserinfo: changes.signedUserinfo ?? client.signedUserinfo,
        signingAlg: changes.signingAlg ?? client.signingAlg,
        responseEncryption: changes.responseEncryption === undefined ? client.responseEncryption : changes.responseEncryption,
        fapi2: changes.fapi2 ?? client.fapi2,
        tokenExchangeFrom: changes.tokenExchangeFrom ?? client.tokenExchangeFrom,
        clientUri: changes.clientUri === undefined ? client.clientUri : changes.clientUri,
        policyUri: changes.policyUri === undefined ? client.policyUri : changes.policyUri,
        tosUri: changes.tosUri === undefined ? client.tosUri : changes.tosUri,
      };
      const base = backchannel.metadata ?? withBackchannelLogout(client.metadata, client.backchannelLogoutUri, client.backchannelLogoutSessionRequired);
      row.metadata = JSON.stringify(withSubjectType(withPolicies(base, policies), client));
    }
    if (changes.tokenExchangeFrom !== undefined) row.grant_types = withTokenExchangeGrant(client.grantTypes, changes.tokenExchangeFrom);
    if (Object.keys(row).length === 0) return client;
    const updated = await this.#update(clientId, row);
    this.#record('client_updated', clientId, { fields: Object.keys(changes) });
    return updated;
  }

  /** Refuses an algorithm that no key in keys/ signs with: the client's first ID token would fail. */
  async #checkSigningAlg(alg: SigningAlg): Promise<void> {
    const keys = this.options.signingKeys;
    const problem = keys && (await missingKeyProblem(alg, keys, 'client'));
    if (problem) throw new InputError(`signingAlg: ${problem}`);
  }

  /**
   * The sector of a pairwise client with these redirect URIs: its sector identifier URI's host once the document
   * there lists them all, or their one host; an InputError says why there is none.
   */
  async #checkedSector(sectorIdentifierUri: string | undefined, redirectUris: readonly string[]): Promise<string> {
    if (sectorIdentifierUri) {
      const problem =
        sectorIdentifierUriProblem(sectorIdentifierUri, { production: this.#production }) ??
        (await sectorDocumentProblem(sectorIdentifierUri, redirectUris, { allowPrivateNetworks: this.options.allowPrivateNetworkCalls ?? !this.#production }));
      if (problem) throw new InputError(`sectorIdentifierUri: ${problem}`);
    }
    const sector = sectorOf(sectorIdentifierUri, redirectUris);
    if ('problem' in sector) throw new InputError(`sectorIdentifierUri: ${sector.problem}`);
    return sector.sector;
  }

  /** Token exchange names APIs registered here: a typo would otherwise fail only at the first exchange. */
  async #checkApisExist(indicators: readonly string[]): Promise<void> {
    if (indicators.length === 0) return;
    const known = new Set((await this.db('apis').whereIn('indicator', [...indicators]).pluck('indicator')) as string[]);
    const unknown = indicators.filter((indicator) => !known.has(indicator));
    if (unknown.length > 0) throw new InputError(`tokenExchangeFrom: no API is registered as ${unknown.join(', ')} (authz apis list)`);
  }

  /** The client's metadata with its back-channel logout registration as `changes` leave it, or why they cannot. */
  #changedBackchannelLogout(client: ClientRecord, changes: z.output<typeof clientChangesSchema>) {
    const { backchannelLogoutUri: newUri, backchannelLogoutSessionRequired: newSessionRequired } = changes;
    const problems: string[] = [];
    if (newUri) {
      const problem = backchannelLogoutRefusal(client.type) ?? backchannelLogoutUriProblem(newUri, { production: this.#production });
      if (problem) problems.push(`backchannelLogoutUri: ${problem}`);
    }
    const uri = newUri === undefined ? client.backchannelLogoutUri : newUri;
    if (newSessionRequired !== undefined && !uri) {
      problems.push(`backchannelLogoutSessionRequired: client ${client.clientId} has no back-channel logout URI: give backchannelLogoutUri too`);
    }
    if (newUri === undefined && newSessionRequired === undefined) return { problems };
    // A URI added to a client that had none starts with the default of `create`.
    const sessionRequired = newSessionRequired ?? (client.backchannelLogoutUri ? client.backchannelLogoutSessionRequired : true);
    return { problems, metadata: withBackchannelLogout(client.metadata, uri, sessionRequired) };
  }

  async disable(clientId: string): Promise<ClientRecord> {
    const client = await this.#update(clientId, { disabled_at: new Date() });
    this.#record('client_disabled', clientId);
    return client;
  }

  async enable(clientId: string): Promise<ClientRecord> {
    const client = await this.#update(clientId, { disabled_at: null });
    this.#record('client_enabled', clientId);
    return client;
  }

  /**
   * Deletes the client, its secrets and every grant and token of it stored in SQL (src/store/grant-records.ts).
   * `detail` is said in the audit event beside who removed it: why, when it was not an administrator's choice.
   */
  async remove(clientId: string, detail: Record<string, unknown> = {}): Promise<void> {
    await this.db.transaction(async (trx) => {
      // `returning` rather than the row count, which the embedded driver does not report.
      const deleted = await trx('clients').where({ client_id: clientId }).delete().returning('client_id');
      if (deleted.length === 0) throw new NotFoundError(`no client ${clientId}`);
      await deleteClientRecords(trx, clientId);
    });
    this.#record('client_removed', clientId, detail);
  }

  #secretRow(clientId: string, secret: string, expiresAt: Date | null) {
    const pepper = this.#currentPepper;
    return { id: randomUUID(), client_id: clientId, pepper_kid: pepper.kid, hash: hashClientSecret(secret, pepper), expires_at: expiresAt };
  }

  async #update(clientId: string, changes: ClientRowChanges): Promise<ClientRecord> {
    const updated = await this.db('clients')
      .where({ client_id: clientId })
      .update({ ...changes, updated_at: new Date() })
      .returning('client_id');
    if (updated.length === 0) throw new NotFoundError(`no client ${clientId}`);
    return this.require(clientId);
  }
}
