/**
 * Environment → one typed, validated configuration object.
 *
 * Every setting the server reads is declared here once, with its default and what it means; the README's
 * configuration table is written from this file. Development (the embedded default) fills in what is missing;
 * production refuses to start, one line per problem, see `productionProblems`.
 */
import type { X509Certificate } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseUserClaims } from './accounts/attributes.js';
import { readBlocklist } from './accounts/password-policy.js';
import { PWNED_PASSWORDS_RANGE_API } from './accounts/breached-passwords.js';
import { MAX_PASSWORD_HISTORY, MAX_PASSWORD_HISTORY_DAYS } from './accounts/password-history.js';
import { themeProblems } from './interaction/theme.js';
import { readTrustedAuthorities } from './oidc/mutual-tls.js';
import { secretKey } from './webhooks/signature.js';
import { type IdentityProvider, readIdentityProviders } from './federation/identity-providers.js';

const FLAG_VALUES = ['true', 'false', '1', '0', 'yes', 'no', ''] as const;
const isOn = (value: string | undefined) => value === 'true' || value === '1' || value === 'yes';

const booleanFlag = z.enum(FLAG_VALUES).optional().transform(isOn);

/** A boolean whose default depends on other settings: undefined when unset. */
const booleanFlagOrUnset = z
  .enum(FLAG_VALUES)
  .optional()
  .transform((value) => (value === undefined ? undefined : isOn(value)));

/** A boolean that is on unless set to false, 0 or no. */
const booleanFlagOn = z
  .enum(FLAG_VALUES)
  .optional()
  .transform((value) => value !== 'false' && value !== '0' && value !== 'no');

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `90`, `45s`, `30m`, `12h` or `90d` into seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? 1);
}

const duration = z
  .string()
  .transform((text, ctx) => {
    const value = parseDuration(text);
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration: use seconds, or a number with s, m, h or d` });
      return z.NEVER;
    }
    return value;
  });

const seconds = (fallback: number) => duration.pipe(z.number().int().positive()).default(fallback);

/**
 * Digits only. `z.coerce.number()` took a blank value for 0 (`PORT= ` listened on a random port), `1e1` for 10
 * and `0x50` for 80, and said "received NaN" of a word, which names nothing the operator typed.
 */
const wholeNumber = z.string().transform((text, ctx) => {
  if (!/^\d+$/.test(text.trim())) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a whole number` });
    return z.NEVER;
  }
  return Number(text);
});

/**
 * A PostgreSQL URL. pg reads anything else as a host or path and fails at the first connection with a message
 * about the protocol ("no PostgreSQL user name specified in startup packet") instead of the setting.
 */
const postgresUrl = z.string().refine((text) => /^postgres(ql)?:$/.test(URL.parse(text)?.protocol ?? ''), {
  error: 'DATABASE_URL must look like postgres://user:password@host:5432/database (with special characters of the password percent-encoded)',
});

/**
 * An http(s) origin. The endpoints are served at the root of the host, so an issuer with a path published a
 * discovery address (`<issuer>/.well-known/openid-configuration`) that answered 404, and `localhost:3000` (no
 * scheme) parsed as a URL of scheme `localhost:`.
 */
/** An http(s) URL of another service (a mirror, a document to link to); `error` says what it is for. */
const httpUrl = (error: string) => z.string().refine((text) => /^https?:$/.test(URL.parse(text)?.protocol ?? ''), { error });

const issuerUrl = z.string().refine(
  (text) => {
    const url = URL.parse(text);
    if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password) return false;
    // `search` and `hash` are empty for a bare `?` or `#` as well.
    return url.pathname === '/' && !/[?#]/.test(text);
  },
  { error: 'ISSUER must be this server\'s address with no path, such as https://id.example.com (endpoints are served at the root of the host)' },
);

const environmentSchema = z.object({
  /** `production` turns on the strict start-up checks, secure cookies and HSTS. */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** The issuer identifier: the public base URL of this server. Must be https in production. */
  ISSUER: issuerUrl.optional(),
  /** TCP port to listen on. */
  PORT: wholeNumber.pipe(z.number().int().min(0).max(65535)).default(3000),
  /** Worker processes per instance (node:cluster). Needs DATABASE_URL: the embedded database is single-process. */
  WEB_CONCURRENCY: wholeNumber.pipe(z.number().int().min(1).max(64)).default(1),
  /** Interface to bind. */
  HOST: z.string().default('0.0.0.0'),
  /** PostgreSQL connection string. Unset: embedded PGlite under DATA_DIR. */
  DATABASE_URL: postgresUrl.optional(),
  /** Postgres schema to use (default `public`); tests give each file its own. */
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, 'DATABASE_SCHEMA must be a plain lower-case identifier')
    .optional(),
  /** Largest number of Postgres connections per process. */
  DATABASE_POOL_MAX: wholeNumber.pipe(z.number().int().positive()).default(10),
  /**
   * Named prepared statements for the queries on the request path (src/store/prepared-statements.ts). Turn off
   * behind a connection pooler in transaction mode that cannot keep them (PgBouncer before 1.21).
   */
  DATABASE_PREPARED_STATEMENTS: booleanFlagOn,
  /**
   * Longest a query may run on PostgreSQL (its `statement_timeout`); a query PostgreSQL has not answered a moment
   * after that, on a connection that went silent, is given up and its connection closed. `0`: no limit.
   * Migrations run without it.
   */
  DATABASE_QUERY_TIMEOUT: duration.pipe(z.number().int().min(0).max(3600)).default(10),
  /** Redis URL for sessions and short-lived artifacts. Unset: they live in SQL too. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'REDIS_URL must start with redis:// or rediss://')
    .optional()
    .or(z.literal('')),
  /**
   * Comma-separated `host:port` of Redis Sentinels. With them, the master named REDIS_SENTINEL_MASTER is found
   * (and followed across failovers) through the sentinels; REDIS_URL then only gives the password, database and TLS.
   */
  REDIS_SENTINELS: z
    .string()
    .regex(/^[^\s:,]+:\d+(,[^\s:,]+:\d+)*$/, 'REDIS_SENTINELS must look like host1:26379,host2:26379')
    .optional(),
  /** The master's name in the sentinels' configuration. */
  REDIS_SENTINEL_MASTER: z.string().default('mymaster'),
  /**
   * Comma-separated `host:port` of some nodes of a Redis Cluster; the rest of the cluster is discovered from them
   * (and followed across resharding and failover). REDIS_URL then only gives the password and TLS.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s:,]+:\d+(,[^\s:,]+:\d+)*$/, 'REDIS_CLUSTER_NODES must look like host1:6379,host2:6379')
    .optional(),
  /** Prefix of every Redis key this server writes. */
  REDIS_KEY_PREFIX: z.string().default('authz:'),
  /** Where the embedded database and generated development secrets live. */
  DATA_DIR: z.string().default('data'),
  /** Folder of signing keys (see keys/README.md). */
  KEYS_DIR: z.string().default('keys'),
  /** Passphrase of encrypted PKCS#8 key files (and of keys the server or CLI writes). */
  KEYS_PASSPHRASE: z.string().min(1).optional(),
  /** How long a new key is published before it signs; longer than the JWKS cache lifetime we announce. */
  KEY_ACTIVATION_DELAY: seconds(3600),
  /** Create the next key automatically this long after the current one activated. Unset: rotate by hand. */
  KEY_ROTATION_INTERVAL: duration.pipe(z.number().int().positive()).optional(),
  /** How often keys/ is re-read (also on SIGHUP). */
  KEYS_RESCAN_INTERVAL: seconds(30),
  /**
   * Where RS256 signatures are computed: `event-loop` in line, `pool` on libuv's thread pool; `auto` signs in
   * line when there is a worker per core (src/keys/inline-signing-key.ts).
   */
  SIGNING_THREAD: z.enum(['auto', 'event-loop', 'pool']).default('auto'),
  /** Comma-separated cookie-signing secrets, newest first (the first signs, all verify). */
  COOKIE_SECRETS: z.string().optional(),
  /**
   * Comma-separated `kid:secret` peppers for client-secret hashes, newest first. The first hashes new secrets;
   * all verify, so a pepper can be rotated by prepending one.
   */
  CLIENT_SECRET_PEPPERS: z.string().optional(),
  /** Trust X-Forwarded-* headers from a TLS-terminating proxy in front of the server. */
  PROXY: booleanFlag,
  /**
   * Mutual TLS (RFC 8705, src/oidc/mutual-tls.ts): the request header in which the TLS-terminating proxy passes on
   * the client's certificate. Needs PROXY, since a client could send the header itself to a server facing it.
   */
  MTLS_CERTIFICATE_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name, such as X-SSL-Client-Cert')
    .transform((name) => name.toLowerCase())
    .optional(),
  /** The certificate authorities (a PEM bundle) whose certificates `tls_client_auth` clients may present. */
  MTLS_TRUSTED_CA_FILE: z.string().optional(),
  /** The certificate revocation lists (PEM) of MTLS_TRUSTED_CA_FILE's authorities (src/oidc/revocation-lists.ts). */
  MTLS_CRL_FILE: z.string().optional(),
  /**
   * Where a second host of the proxy asks clients for certificates (RFC 8705 §5): discovery names the endpoints
   * there as `mtls_endpoint_aliases`, so that the issuer's own host need not ask browsers for one.
   */
  MTLS_ENDPOINTS_URL: z
    .string()
    .refine((text) => {
      const url = URL.parse(text);
      return Boolean(url && /^https?:$/.test(url.protocol) && !url.username && !url.password && !/[?#]/.test(text));
    }, 'must be the http(s) URL of the host at which your proxy asks clients for certificates, such as https://mtls.id.example.com (no query or fragment)')
    .transform((text) => text.replace(/\/+$/, ''))
    .optional(),
  /**
   * Let the server's calls to URLs registered for clients (back-channel logout URIs, jwks_uri) reach private,
   * loopback and link-local addresses (src/oidc/outbound-fetch.ts). Unset: yes outside production, no in production.
   */
  ALLOW_PRIVATE_NETWORK_CALLS: booleanFlagOrUnset,
  /** pino log level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** bcrypt cost for user passwords. */
  BCRYPT_COST: wholeNumber.pipe(z.number().int().min(4).max(15)).default(12),
  /** The fewest characters a new password may have (src/accounts/password-policy.ts); NIST asks 15 of a password used alone. */
  PASSWORD_MIN_LENGTH: wholeNumber.pipe(z.number().int().min(8).max(64)).default(8),
  /** A file of passwords of the deployment's own to refuse, one a line (`#` comments), beside the common ones. */
  PASSWORD_BLOCKLIST_FILE: z.string().optional(),
  /** How long a password lasts before it must be replaced at the next sign-in with it (src/accounts/password-expiry.ts); 0: for ever. */
  PASSWORD_MAX_AGE: duration
    .pipe(z.number().int().refine((value) => value === 0 || (value >= 86_400 && value <= 10 * 365 * 86_400), 'must be 0 (never) or 1 day to 10 years, such as 90d'))
    .default(0),
  /** A new password may not be the current one nor one of the N-1 before it (src/accounts/password-history.ts); 0: not checked. */
  /** Refuse passwords known from data breaches, by Have I Been Pwned's k-anonymity range API (src/accounts/breached-passwords.ts). */
  PASSWORD_BREACH_CHECK: booleanFlag,
  /** The range API to ask instead of Have I Been Pwned's (a mirror): the SHA-1 prefix is appended. */
  PASSWORD_BREACH_API: httpUrl('must be an http(s) URL, to which the 5-character prefix is appended').optional(),
  PASSWORD_HISTORY: wholeNumber.pipe(z.number().int().min(0).max(MAX_PASSWORD_HISTORY)).default(0),
  /** A new password may not be one the account had in the last N days (src/accounts/password-history.ts); 0: not checked. */
  PASSWORD_HISTORY_DAYS: wholeNumber.pipe(z.number().int().min(0).max(MAX_PASSWORD_HISTORY_DAYS)).default(0),
  /** How long client and API records are cached in process, in milliseconds. */
  CLIENT_CACHE_TTL_MS: wholeNumber.pipe(z.number().int().min(0)).default(10_000),
  /**
   * Longest an opaque access token's record is kept in process after a read (src/store/token-record-cache.ts); a
   * revocation reaches every instance within milliseconds regardless. 0: not kept.
   */
  TOKEN_CACHE_TTL_MS: wholeNumber.pipe(z.number().int().min(0)).default(30_000),
  /** Most access-token records kept in process per worker (about 1 KB each); 0: none. */
  TOKEN_CACHE_MAX_ENTRIES: wholeNumber.pipe(z.number().int().min(0)).default(10_000),
  /** Lifetime of opaque access tokens (userinfo), seconds. JWT access tokens use their API's TTL. */
  ACCESS_TOKEN_TTL: seconds(3600),
  /** Default lifetime of JWT access tokens for APIs that set none, seconds. */
  API_ACCESS_TOKEN_TTL: seconds(600),
  /**
   * Lifetime of a refresh token, seconds. A rotated one of a browser-based public client (spa) keeps its
   * predecessor's remaining time; every other client's successor gets the full lifetime, capped by the grant's.
   */
  REFRESH_TOKEN_TTL: seconds(30 * 24 * 3600),
  /**
   * For how long after a refresh token is rotated it is accepted once more (two tabs refreshing at once); a reuse
   * after that revokes the grant. 0 turns the window off.
   */
  REFRESH_REUSE_GRACE: duration.pipe(z.number().int().min(0).max(60)).default(5),
  /** Lifetime of a login session, seconds, counted again from each use (sliding). */
  SESSION_TTL: seconds(14 * 24 * 3600),
  /**
   * Longest a login session lasts from its sign-in, however often it is used (Keycloak's "SSO Session Max");
   * 0: no maximum.
   */
  SESSION_MAX_TTL: duration.pipe(z.number().int().min(0)).default(30 * 24 * 3600),
  /**
   * The login page's "Keep me signed in": `ask` shows it unticked (untick: the session cookie ends with the
   * browser), `always` keeps every session for SESSION_TTL, `never` ends every one with the browser.
   */
  LOGIN_REMEMBER_ME: z.enum(['ask', 'always', 'never'], { error: 'LOGIN_REMEMBER_ME must be ask, always or never' }).default('ask'),
  /**
   * Comma-separated roles whose users must use two-step verification (an authenticator app): they set it up at their
   * next sign-in. Users can also be asked one by one (`users require-totp`).
   */
  TOTP_REQUIRED_ROLES: z.string().optional(),
  /**
   * Accept POST as well as GET at the authorization and logout endpoints (OpenID Connect Core §3.1.2.1). Off by
   * default, as in oidc-provider 9: a cross-site POST carries the session cookie only when it is SameSite=None,
   * which this turns on for that cookie.
   */
  AUTHORIZATION_POST: booleanFlag,
  /**
   * Every DPoP proof must carry a nonce this server handed out (RFC 9449 §8, §9; src/oidc/dpop-nonces.ts): a proof
   * made ahead of time is worth nothing. Off: nonces are offered and taken, a recent proof without one accepted.
   */
  DPOP_NONCE_REQUIRED: booleanFlag,
  /** Lifetime of a consent record; refresh tokens never outlive it, so it is at least a year. */
  GRANT_TTL: seconds(365 * 24 * 3600),
  /** Lifetime of an ID token, seconds. */
  ID_TOKEN_TTL: seconds(3600),
  /** How long a device's code (RFC 8628) waits for its person to enter and approve it. */
  DEVICE_CODE_TTL: duration.pipe(z.number().int().min(60).max(24 * 3600)).default(600),
  /**
   * The `interval` a device is told to keep between polls (RFC 8628 §3.5); one that polls sooner while its code
   * is pending gets `slow_down`, and 5 s more to wait each time.
   */
  DEVICE_POLL_INTERVAL: duration.pipe(z.number().int().min(1).max(300)).default(5),
  /** Failed sign-ins allowed per account within LOGIN_FAILURE_WINDOW before it is locked. */
  LOGIN_MAX_FAILURES: wholeNumber.pipe(z.number().int().min(1)).default(5),
  /** Failed sign-ins allowed per client IP within LOGIN_FAILURE_WINDOW before the IP is locked. */
  LOGIN_MAX_FAILURES_PER_IP: wholeNumber.pipe(z.number().int().min(1)).default(100),
  /** The window in which failures are counted. */
  LOGIN_FAILURE_WINDOW: seconds(15 * 60),
  /** The first lock; each further lock within a day doubles it, up to LOGIN_MAX_LOCK. */
  LOGIN_LOCK: seconds(15 * 60),
  LOGIN_MAX_LOCK: seconds(24 * 3600),
  /** Failed client authentications (token, introspection, revocation) allowed per client_id and per IP in the window. */
  CLIENT_AUTH_MAX_FAILURES: wholeNumber.pipe(z.number().int().min(1)).default(20),
  /**
   * On SIGTERM, keep serving this long with /readyz answering 503, so the load balancer stops sending traffic
   * before the listener closes (set it above the balancer's probe interval); then in-flight requests finish.
   */
  SHUTDOWN_DELAY: duration.pipe(z.number().int().min(0).max(300)).default(0),
  /**
   * Where this server sends mail (password-reset and email-confirmation links): an SMTP URL such as
   * `smtps://user:password@smtp.example.com:465`, or `smtp://…:587`, which upgrades with STARTTLS when the server
   * offers it (add `?requireTLS=true` to insist). Unset: in production no mail is sent and those links are not
   * offered; in development each mail is written to the log instead, link included.
   */
  SMTP_URL: z
    .string()
    .refine((text) => /^smtps?:$/.test(URL.parse(text)?.protocol ?? ''), {
      error: 'SMTP_URL must look like smtps://user:password@smtp.example.com:465 or smtp://smtp.example.com:587',
    })
    .optional(),
  /** The From of that mail, `address` or `Name <address>`. Default: no-reply at the issuer's host. */
  MAIL_FROM: z
    .string()
    .refine((text) => /^[^<>@\s]+@[^<>@\s]+$|^[^<>]*<[^<>@\s]+@[^<>@\s]+>$/.test(text.trim()), {
      error: 'MAIL_FROM must be an address such as no-reply@example.com, or Name <no-reply@example.com>',
    })
    .optional(),
  /**
   * An account must confirm its email address (by a link mailed to it) before it signs in to any app, as with
   * Keycloak's "Verify email"; needs mail (SMTP_URL, or the log in development).
   */
  EMAIL_CONFIRMATION_REQUIRED: booleanFlag,
  /**
   * A folder of mail templates used before views/mail/ (`password-reset.subject.njk`, `.txt.njk`, `.html.njk`, …):
   * a deployment's own name, look or language. Any template not there comes from views/mail/.
   */
  MAIL_TEMPLATES_DIR: z.string().optional(),
  /**
   * A deployment's own look (src/interaction/theme.ts): page templates used before views/, `theme-head.njk` and
   * `theme-header.njk` put in every page, files in `assets/` served at /assets/, and mail templates in `mail/`.
   */
  THEME_DIR: z.string().optional(),
  /** A JSON file listing other identity providers people may sign in with (src/federation/identity-providers.ts). */
  IDENTITY_PROVIDERS_FILE: z.string().optional(),
  /** How long a link sent by mail works (once): a password reset or an email confirmation. */
  EMAIL_LINK_TTL: duration.pipe(z.number().int().min(60).max(7 * 24 * 3600)).default(30 * 60),
  /**
   * `open`: the login page offers "Create an account", and anyone may make one (Keycloak's "User registration");
   * `off`: accounts are made by administrators only.
   */
  REGISTRATION: z.enum(['off', 'open'], { error: 'REGISTRATION must be off or open' }).default('off'),
  /**
   * Apps registering themselves at /reg (RFC 7591 dynamic client registration, src/client-registration/): `off`;
   * `token`, with an initial access token an administrator handed out (`authz clients registration-token`); or
   * `open`, by anyone (as MCP clients expect), for apps that sign people in, each asking them for consent.
   */
  CLIENT_REGISTRATION: z.enum(['off', 'token', 'open'], { error: 'CLIENT_REGISTRATION must be off, token or open' }).default('off'),
  /**
   * An app that registered itself and got no token for this long is removed with its grants (src/client-registration/
   * unused-registrations.ts), so that apps tried once and abandoned do not pile up; 0: kept until deleted.
   */
  CLIENT_REGISTRATION_UNUSED_TTL: duration
    .pipe(z.number().int().refine((value) => value === 0 || (value >= 86_400 && value <= 10 * 365 * 86_400), 'must be 0 (kept) or 1 day to 10 years, such as 30d'))
    .default(0),
  /**
   * Hosts an app registering without an initial access token may name (Keycloak's "Trusted Hosts" policy):
   * `app.example.com`, or `*.example.com` for any host under it; loopback and private-use redirect URIs of native
   * apps always. Unset: any host.
   */
  CLIENT_REGISTRATION_TRUSTED_HOSTS: z
    .string()
    .optional()
    .refine((value) => splitList(value).every((host) => /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)), {
      error: 'CLIENT_REGISTRATION_TRUSTED_HOSTS must list host names, comma-separated (app.example.com, *.example.com)',
    }),
  /**
   * Apps named by the URL of their metadata document (draft-ietf-oauth-client-id-metadata-document, as MCP clients
   * use): src/client-registration/metadata-documents.ts. Off until turned on: the server then fetches URLs apps name.
   */
  CLIENT_ID_METADATA_DOCUMENTS: booleanFlag,
  /** People may delete their own account on the account page (Keycloak's "Delete Account", off until turned on). */
  ACCOUNT_DELETION: booleanFlag,
  /** Where the terms of service are read (src/oidc/terms-prompt.ts); with TERMS_VERSION, everyone accepts them. */
  TERMS_URL: httpUrl('must be the http(s) address of your terms of service').optional(),
  /** The terms' version: a new one asks everyone to accept them again at their next sign-in. */
  TERMS_VERSION: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits, dots, dashes or underscores, such as 2026-12-01')
    .optional(),
  /** Comma-separated user attributes released as claims of the same name (src/accounts/attributes.ts). */
  USER_CLAIMS: z.string().optional(),
  /** Comma-separated roles every self-registered user starts with. */
  REGISTRATION_ROLES: z.string().optional(),
  /** Serve /metrics on this port instead of the main one (and, with WEB_CONCURRENCY > 1, for all workers at once). */
  METRICS_PORT: wholeNumber.pipe(z.number().int().min(1).max(65535)).optional(),
  /**
   * A bearer token a scraper must send for /metrics (src/metrics/metrics-access.ts). In production, /metrics on
   * PORT is served only with it; on METRICS_PORT it is asked for when set.
   */
  METRICS_TOKEN: z.string().min(32, 'METRICS_TOKEN must be at least 32 characters (e.g. openssl rand -base64 32)').max(512).optional(),
  /** How often expired rows are pruned from SQL, seconds. */
  PRUNE_INTERVAL: seconds(600),
  /** How long audit events are kept; older ones are deleted by the pruning job. 0: forever. */
  AUDIT_RETENTION: duration.pipe(z.number().int().min(0)).default(90 * 24 * 3600),
  /** Each audit event is also a line of the log, whatever LOG_LEVEL (src/audit/audit-log.ts). */
  AUDIT_TO_LOG: booleanFlag,
  /** Where audit events are POSTed as signed webhooks (src/webhooks/webhook-delivery.ts); with WEBHOOK_SECRET. */
  WEBHOOK_URL: httpUrl('must be the http(s) address of your webhook endpoint').optional(),
  /** Comma-separated Standard Webhooks secrets (`whsec_` and base64), newest first; each signs. */
  WEBHOOK_SECRET: z.string().optional(),
  /** Comma-separated audit event types to send (`user_*` for all beginning so); unset: all. */
  WEBHOOK_EVENTS: z.string().optional(),
  /**
   * How often the server hands memory that malloc holds free back to the system (glibc's malloc_trim, on Linux);
   * 0 turns it off (src/memory-trim.ts).
   */
  MEMORY_TRIM_INTERVAL: duration.pipe(z.number().int().min(0).max(3600)).default(1),
});

/** The name of every environment variable the server reads (.env.example lists each one). */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.keys(environmentSchema.shape);

/** The longest access-token lifetime an API may set; a replaced key is published at least this long. */
export const MAX_API_TOKEN_TTL = 24 * 3600;

export type Environment = z.infer<typeof environmentSchema>;

export interface Config {
  /** Settings taken differently from how they were given, for the log at start-up (one sentence each). */
  notices: string[];
  production: boolean;
  issuer: string;
  port: number;
  host: string;
  workers: number;
  database: { url?: string; schema?: string; poolMax: number; preparedStatements: boolean; queryTimeoutSeconds: number; embeddedDir: string };
  redis?: RedisConfig;
  dataDir: string;
  keys: {
    dir: string;
    passphrase?: string;
    activationDelaySeconds: number;
    rotationIntervalSeconds?: number;
    rescanIntervalSeconds: number;
    /** Cache-Control max-age of the JWKS response: a quarter of the activation delay, at most an hour. */
    jwksMaxAgeSeconds: number;
    /** How long a replaced key stays published: the longest life of a token or logout hint it signed. */
    retireAfterSeconds: number;
    /** Sign on the event loop rather than on libuv's thread pool. */
    signInline: boolean;
  };
  /** Newest first; may be empty in development until secrets are generated. */
  cookieSecrets: string[];
  /** Newest first. */
  clientSecretPeppers: { kid: string; secret: string }[];
  proxy: boolean;
  /** Outgoing calls to client URLs may reach private, loopback and link-local addresses. */
  allowPrivateNetworkCalls: boolean;
  logLevel: Environment['LOG_LEVEL'];
  bcryptCost: number;
  /**
   * New passwords (src/accounts/password-policy.ts): the fewest characters, and the deployment's words to refuse;
   * how many of an account's latest passwords, the current one included, a new one may not repeat; where to look
   * up breached passwords, when they are.
   */
  /** `maxAgeSeconds`: PASSWORD_MAX_AGE, 0 when passwords do not expire. */
  passwords: { minLength: number; blocklist: string[]; history: number; historyDays: number; maxAgeSeconds: number; breachCheck: { rangeApi: string } | undefined };
  clientCacheTtlMs: number;
  /** Access-token records kept in process (with Redis only). */
  tokenCache: { ttlMs: number; maxEntries: number };
  ttl: {
    accessToken: number;
    apiAccessToken: number;
    refreshToken: number;
    /** Seconds a just-rotated refresh token is still accepted. */
    refreshReuseGrace: number;
    /** Sliding: counted again from each use of the session. */
    session: number;
    /** Counted from the sign-in; 0: none. */
    sessionMax: number;
    grant: number;
    idToken: number;
    deviceCode: number;
  };
  /** Seconds a device waits between polls while its code is pending (RFC 8628 `interval`). */
  devicePollIntervalSeconds: number;
  pruneIntervalSeconds: number;
  /** Audit events older than this are deleted when pruning; 0: kept forever. */
  auditRetentionSeconds: number;
  /** Each audit event is also written to the log (AUDIT_TO_LOG). */
  auditToLog: boolean;
  /** Audit events sent to an endpoint as signed webhooks (WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_EVENTS). */
  webhook: { url: string; keys: Buffer[]; events: string[] } | undefined;
  /** Seconds between malloc_trim calls; 0: never. */
  memoryTrimIntervalSeconds: number;
  /** A separate port for /metrics; unset: /metrics on the main port. */
  metricsPort?: number;
  /** The bearer token a scraper sends for /metrics (METRICS_TOKEN). */
  metricsToken?: string;
  /** Seconds between SIGTERM (readiness off) and closing the listener. */
  shutdownDelaySeconds: number;
  /** Whether a sign-in's session cookie outlives the browser: the user's choice, or always, or never. */
  rememberMe: Environment['LOGIN_REMEMBER_ME'];
  /** Users with one of these roles must use two-step verification (src/accounts/two-factor.ts). */
  totpRequiredRoles: string[];
  /** POST accepted at /auth and /session/end; the session cookie is then SameSite=None. */
  authorizationPost: boolean;
  /** Every DPoP proof must carry a server nonce (DPOP_NONCE_REQUIRED). */
  dpopNonceRequired: boolean;
  /** Whether people may create their own account (src/interaction/registration.ts), and the roles they get. */
  registration: { mode: Environment['REGISTRATION']; roles: string[] };
  /** Who may register an app at /reg (CLIENT_REGISTRATION): nobody, holders of an initial access token, anyone. */
  clientRegistration: Environment['CLIENT_REGISTRATION'];
  /** The hosts an app registering without a token may name (lower case; `*.` for any under it); empty: any. */
  clientRegistrationTrustedHosts: string[];
  /** Seconds after which an app that registered itself and got no token since is removed; 0: never. */
  clientRegistrationUnusedTtlSeconds: number;
  /** Apps named by the URL of their metadata document are served (CLIENT_ID_METADATA_DOCUMENTS). */
  clientIdMetadataDocuments: boolean;
  /** The account page offers "Delete your account" (ACCOUNT_DELETION). */
  accountDeletion: boolean;
  /**
   * Mutual TLS (MTLS_CERTIFICATE_HEADER): where the proxy puts the client's certificate, and the authorities
   * `tls_client_auth` trusts (MTLS_TRUSTED_CA_FILE; none: only `self_signed_tls_client_auth`).
   */
  mutualTls: { header: string; trustedAuthorities: X509Certificate[]; endpointsUrl?: string; crlFile?: string } | undefined;
  /** The terms of service each user must have accepted, in this version, to sign in (TERMS_URL, TERMS_VERSION). */
  terms: { url: string; version: string } | undefined;
  /** User attributes released as claims (USER_CLAIMS): ID token and userinfo with `profile`, and access tokens. */
  userClaims: string[];
  /** Scopes of our own and the attributes each releases (`hr:employee_id` in USER_CLAIMS): src/accounts/attributes.ts. */
  claimScopes: Record<string, string[]>;
  /** Mail (src/mail/): sent over SMTP, written to the log (development without SMTP_URL), or not at all. */
  mail: MailConfig;
  /** The deployment's theme folder (THEME_DIR), checked at load: its pages and assets come before ours. */
  themeDir?: string;
  /** Other identity providers people may sign in with (IDENTITY_PROVIDERS_FILE), read and checked at load. */
  identityProviders: IdentityProvider[];
  /** Brute-force limits (src/security/). */
  limits: {
    loginPerAccount: number;
    loginPerIp: number;
    clientAuthFailures: number;
    windowSeconds: number;
    lockSeconds: number;
    maxLockSeconds: number;
  };
}

export interface MailConfig {
  /** `smtp`: sent to SMTP_URL; `log`: written to the log instead (development); `off`: no mail, no links offered. */
  transport: 'smtp' | 'log' | 'off';
  smtpUrl?: string;
  from: string;
  /** Seconds a link sent by mail works. */
  linkTtlSeconds: number;
  /** A sign-in waits until the account's address is confirmed (src/interaction/email-confirmation.ts). */
  confirmationRequired: boolean;
  /** Templates used before views/mail/ (src/mail/messages.ts); unset: views/mail/ alone. */
  templatesDir?: string;
}

export interface RedisConfig {
  url: string;
  keyPrefix: string;
  /** With sentinels, the master is discovered through them. */
  sentinels?: { host: string; port: number }[];
  sentinelMaster: string;
  /** Seed nodes of a Redis Cluster: with them, the server talks to the cluster instead of one server. */
  clusterNodes?: { host: string; port: number }[];
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`configuration is not usable:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

const splitList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

function parsePeppers(value: string | undefined): { kid: string; secret: string }[] {
  return splitList(value).map((entry) => {
    const at = entry.indexOf(':');
    if (at <= 0 || at === entry.length - 1) {
      throw new ConfigError([`CLIENT_SECRET_PEPPERS entry "${entry.slice(0, 8)}…" must look like kid:secret`]);
    }
    return { kid: entry.slice(0, at), secret: entry.slice(at + 1) };
  });
}

/** `host1:26379,host2:26379` as a list; undefined when unset. */
const hostPorts = (value: string | undefined) =>
  value?.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  });

/** Sentinel and Cluster are two different deployments, and a Cluster has only database 0. */
function redisTopologyProblem(redis: RedisConfig): string | undefined {
  if (redis.sentinels && redis.clusterNodes) return 'REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: a Redis deployment uses one or the other';
  const database = URL.parse(redis.url)?.pathname.slice(1);
  if (redis.clusterNodes && database && database !== '0') {
    return `REDIS_URL names database ${database}, but a Redis Cluster has only database 0: remove it from the URL`;
  }
  return undefined;
}

/**
 * With a worker per core, a core that signs on the pool is taken from another worker's event loop, and the
 * hand-off costs more than it saves; with fewer workers than cores the pool puts the idle ones to work.
 */
function signInline(choice: Environment['SIGNING_THREAD'], workers: number): boolean {
  if (choice === 'auto') return workers >= availableParallelism();
  return choice === 'event-loop';
}

function mailConfig(e: Environment, production: boolean, port: number): MailConfig {
  const host = URL.parse(e.ISSUER ?? `http://localhost:${port}`)?.hostname ?? 'localhost';
  return {
    transport: e.SMTP_URL ? 'smtp' : production ? 'off' : 'log',
    smtpUrl: e.SMTP_URL,
    from: e.MAIL_FROM?.trim() ?? `no-reply@${host}`,
    linkTtlSeconds: e.EMAIL_LINK_TTL,
    confirmationRequired: e.EMAIL_CONFIRMATION_REQUIRED,
    templatesDir: mailTemplatesDir(e),
  };
}

/** PASSWORD_BLOCKLIST_FILE's words; a file that cannot be read stops the start, naming it. */
function passwordBlocklist(file: string | undefined): string[] {
  if (!file) return [];
  try {
    return readBlocklist(path.resolve(file));
  } catch (error) {
    throw new ConfigError([`PASSWORD_BLOCKLIST_FILE: cannot read ${path.resolve(file)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
}

/**
 * MTLS_CERTIFICATE_HEADER and MTLS_TRUSTED_CA_FILE. The header is believed only from a proxy (PROXY), which must
 * set it on every request, empty when there is no certificate, so that no client can send its own.
 */
function mutualTlsConfig(e: Environment, issuer: string): Config['mutualTls'] {
  if (!e.MTLS_CERTIFICATE_HEADER) {
    const needing = [e.MTLS_TRUSTED_CA_FILE && 'MTLS_TRUSTED_CA_FILE', e.MTLS_CRL_FILE && 'MTLS_CRL_FILE', e.MTLS_ENDPOINTS_URL && 'MTLS_ENDPOINTS_URL'].filter(Boolean);
    if (needing.length > 0) throw new ConfigError([`${needing.join(' and ')} ${needing.length > 1 ? 'need' : 'needs'} MTLS_CERTIFICATE_HEADER: the header in which your proxy passes on the client certificate`]);
    return undefined;
  }
  const endpointsUrl = e.MTLS_ENDPOINTS_URL;
  if (endpointsUrl === issuer.replace(/\/+$/, '')) {
    throw new ConfigError([`MTLS_ENDPOINTS_URL is the issuer itself (${issuer}): give the URL of the proxy's other host, or leave it unset when the issuer's host asks for certificates`]);
  }
  if (!e.PROXY) {
    throw new ConfigError([
      'MTLS_CERTIFICATE_HEADER needs PROXY=true: the certificate comes from the TLS-terminating proxy in front of the server, and without one any client could send the header itself',
    ]);
  }
  if (!e.MTLS_TRUSTED_CA_FILE) {
    if (e.MTLS_CRL_FILE) throw new ConfigError(['MTLS_CRL_FILE needs MTLS_TRUSTED_CA_FILE: the lists are those of the authorities it trusts']);
    return { header: e.MTLS_CERTIFICATE_HEADER, trustedAuthorities: [], endpointsUrl };
  }
  const file = path.resolve(e.MTLS_TRUSTED_CA_FILE);
  const crlFile = e.MTLS_CRL_FILE ? path.resolve(e.MTLS_CRL_FILE) : undefined;
  try {
    return { header: e.MTLS_CERTIFICATE_HEADER, trustedAuthorities: readTrustedAuthorities(file), endpointsUrl, crlFile };
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError([`MTLS_TRUSTED_CA_FILE: ${file}: ${reason}`]);
  }
}

/**
 * WEBHOOK_URL with its WEBHOOK_SECRET (Standard Webhooks: `whsec_` and the base64 of 24 to 64 random bytes; two,
 * comma-separated, during a rotation) and the event types of WEBHOOK_EVENTS.
 */
function webhookConfig(e: Environment): Config['webhook'] {
  if (!e.WEBHOOK_URL) {
    if (e.WEBHOOK_SECRET || e.WEBHOOK_EVENTS) throw new ConfigError(['WEBHOOK_SECRET and WEBHOOK_EVENTS need WEBHOOK_URL: where the events are sent']);
    return undefined;
  }
  const secrets = splitList(e.WEBHOOK_SECRET);
  const makeOne = 'whsec_ and the base64 of 24 to 64 random bytes: make one with echo "whsec_$(openssl rand -base64 32)"';
  if (secrets.length === 0) throw new ConfigError([`WEBHOOK_URL needs WEBHOOK_SECRET, which signs each event so your endpoint knows it is ours: ${makeOne}`]);
  const keys = secrets.map((secret) => (/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret) ? secretKey(secret) : Buffer.alloc(0)));
  if (keys.some((key) => key.length < 24 || key.length > 64)) throw new ConfigError([`WEBHOOK_SECRET: each secret must be ${makeOne}`]);
  const events = splitList(e.WEBHOOK_EVENTS);
  const wrong = events.find((name) => !/^[a-z][a-z0-9_]*\*?$/.test(name));
  if (wrong) throw new ConfigError([`WEBHOOK_EVENTS: ${wrong} is no audit event type (such as user_created), nor a beginning of one with * (user_*)`]);
  return { url: e.WEBHOOK_URL, keys, events };
}

/** MAIL_TEMPLATES_DIR, or else the theme's mail/ folder when it has one. */
function mailTemplatesDir(e: Environment): string | undefined {
  if (e.MAIL_TEMPLATES_DIR) return path.resolve(e.MAIL_TEMPLATES_DIR);
  const themed = e.THEME_DIR && path.resolve(e.THEME_DIR, 'mail');
  return themed && isFolder(themed) ? themed : undefined;
}

/** One line naming the variable once: some messages already begin with its name. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const variable = issue.path.join('.');
  return issue.message.startsWith(variable) ? issue.message : `${variable}: ${issue.message}`;
}

/** Reads and validates the environment. Throws ConfigError listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // `FOO=` (as .env files and compose write an unset value) means "not set", for every variable alike.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map(describeIssue));
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const port = e.PORT;
  // Read once: the config keeps the claims and their scopes, and the problems are raised with the others below.
  const userClaims = parseUserClaims(splitList(e.USER_CLAIMS));
  // The embedded database admits one process.
  const workers = e.DATABASE_URL ? e.WEB_CONCURRENCY : 1;
  const issuer = (e.ISSUER ?? `http://localhost:${port}`).replace(/\/$/, '');
  const config: Config = {
    notices: workers < e.WEB_CONCURRENCY ? [`WEB_CONCURRENCY=${e.WEB_CONCURRENCY} needs DATABASE_URL: the embedded database admits one process, so one runs`] : [],
    production,
    issuer,
    port,
    host: e.HOST,
    workers,
    database: {
      url: e.DATABASE_URL || undefined,
      schema: e.DATABASE_SCHEMA,
      poolMax: e.DATABASE_POOL_MAX,
      preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
      queryTimeoutSeconds: e.DATABASE_QUERY_TIMEOUT,
      embeddedDir: path.resolve(e.DATA_DIR, 'pglite'),
    },
    redis: e.REDIS_URL
      ? {
          url: e.REDIS_URL,
          keyPrefix: e.REDIS_KEY_PREFIX,
          sentinels: hostPorts(e.REDIS_SENTINELS),
          sentinelMaster: e.REDIS_SENTINEL_MASTER,
          clusterNodes: hostPorts(e.REDIS_CLUSTER_NODES),
        }
      : undefined,
    dataDir: path.resolve(e.DATA_DIR),
    keys: {
      dir: path.resolve(e.KEYS_DIR),
      passphrase: e.KEYS_PASSPHRASE,
      activationDelaySeconds: e.KEY_ACTIVATION_DELAY,
      rotationIntervalSeconds: e.KEY_ROTATION_INTERVAL,
      rescanIntervalSeconds: e.KEYS_RESCAN_INTERVAL,
      jwksMaxAgeSeconds: Math.min(3600, Math.floor(e.KEY_ACTIVATION_DELAY / 4)),
      retireAfterSeconds: Math.max(e.SESSION_TTL, e.ID_TOKEN_TTL, e.API_ACCESS_TOKEN_TTL, MAX_API_TOKEN_TTL),
      signInline: signInline(e.SIGNING_THREAD, workers),
    },
    cookieSecrets: splitList(e.COOKIE_SECRETS),
    clientSecretPeppers: parsePeppers(e.CLIENT_SECRET_PEPPERS),
    proxy: e.PROXY,
    allowPrivateNetworkCalls: e.ALLOW_PRIVATE_NETWORK_CALLS ?? !production,
    logLevel: e.LOG_LEVEL,
    bcryptCost: e.BCRYPT_COST,
    passwords: {
      minLength: e.PASSWORD_MIN_LENGTH,
      blocklist: passwordBlocklist(e.PASSWORD_BLOCKLIST_FILE),
      history: e.PASSWORD_HISTORY,
      historyDays: e.PASSWORD_HISTORY_DAYS,
      maxAgeSeconds: e.PASSWORD_MAX_AGE,
      breachCheck: e.PASSWORD_BREACH_CHECK ? { rangeApi: e.PASSWORD_BREACH_API ?? PWNED_PASSWORDS_RANGE_API } : undefined,
    },
    clientCacheTtlMs: e.CLIENT_CACHE_TTL_MS,
    tokenCache: { ttlMs: e.TOKEN_CACHE_TTL_MS, maxEntries: e.TOKEN_CACHE_MAX_ENTRIES },
    ttl: {
      accessToken: e.ACCESS_TOKEN_TTL,
      apiAccessToken: e.API_ACCESS_TOKEN_TTL,
      refreshToken: e.REFRESH_TOKEN_TTL,
      refreshReuseGrace: e.REFRESH_REUSE_GRACE,
      session: e.SESSION_TTL,
      sessionMax: e.SESSION_MAX_TTL,
      grant: Math.max(e.GRANT_TTL, e.REFRESH_TOKEN_TTL),
      idToken: e.ID_TOKEN_TTL,
      deviceCode: e.DEVICE_CODE_TTL,
    },
    devicePollIntervalSeconds: e.DEVICE_POLL_INTERVAL,
    pruneIntervalSeconds: e.PRUNE_INTERVAL,
    auditRetentionSeconds: e.AUDIT_RETENTION,
    auditToLog: e.AUDIT_TO_LOG,
    webhook: webhookConfig(e),
    memoryTrimIntervalSeconds: e.MEMORY_TRIM_INTERVAL,
    metricsPort: e.METRICS_PORT,
    metricsToken: e.METRICS_TOKEN,
    shutdownDelaySeconds: e.SHUTDOWN_DELAY,
    rememberMe: e.LOGIN_REMEMBER_ME,
    totpRequiredRoles: splitList(e.TOTP_REQUIRED_ROLES),
    authorizationPost: e.AUTHORIZATION_POST,
    dpopNonceRequired: e.DPOP_NONCE_REQUIRED,
    mail: mailConfig(e, production, port),
    themeDir: e.THEME_DIR ? path.resolve(e.THEME_DIR) : undefined,
    registration: { mode: e.REGISTRATION, roles: splitList(e.REGISTRATION_ROLES) },
    clientRegistration: e.CLIENT_REGISTRATION,
    clientRegistrationTrustedHosts: splitList(e.CLIENT_REGISTRATION_TRUSTED_HOSTS).map((host) => host.toLowerCase()),
    clientRegistrationUnusedTtlSeconds: e.CLIENT_REGISTRATION_UNUSED_TTL,
    clientIdMetadataDocuments: e.CLIENT_ID_METADATA_DOCUMENTS,
    accountDeletion: e.ACCOUNT_DELETION,
    terms: e.TERMS_URL && e.TERMS_VERSION ? { url: e.TERMS_URL, version: e.TERMS_VERSION } : undefined,
    mutualTls: mutualTlsConfig(e, issuer),
    userClaims: userClaims.claims,
    claimScopes: userClaims.scopes,
    identityProviders: [],
    limits: {
      loginPerAccount: e.LOGIN_MAX_FAILURES,
      loginPerIp: e.LOGIN_MAX_FAILURES_PER_IP,
      clientAuthFailures: e.CLIENT_AUTH_MAX_FAILURES,
      windowSeconds: e.LOGIN_FAILURE_WINDOW,
      lockSeconds: e.LOGIN_LOCK,
      maxLockSeconds: Math.max(e.LOGIN_MAX_LOCK, e.LOGIN_LOCK),
    },
  };
  if (config.mail.templatesDir && !isFolder(config.mail.templatesDir)) {
    throw new ConfigError([`MAIL_TEMPLATES_DIR: there is no folder at ${config.mail.templatesDir}`]);
  }
  const problemsOfTheme = config.themeDir ? themeProblems(config.themeDir) : [];
  if (problemsOfTheme.length > 0) throw new ConfigError(problemsOfTheme);
  if (e.IDENTITY_PROVIDERS_FILE) {
    const { providers, problems } = readIdentityProviders(path.resolve(e.IDENTITY_PROVIDERS_FILE), env, production);
    if (problems.length > 0) throw new ConfigError(problems);
    config.identityProviders = providers;
  }
  if (userClaims.problems.length > 0) throw new ConfigError(userClaims.problems);
  const redisProblem = config.redis && redisTopologyProblem(config.redis);
  if (redisProblem) throw new ConfigError([redisProblem]);
  if (Boolean(e.TERMS_URL) !== Boolean(e.TERMS_VERSION)) {
    throw new ConfigError(['TERMS_URL and TERMS_VERSION go together: the address people read, and the version they accept (a new one asks again)']);
  }
  // Otherwise the second listener fails with "already in use: stop what listens there", and what listens is us.
  if (config.metricsPort === config.port) throw new ConfigError([`METRICS_PORT is the same as PORT (${config.port}): give /metrics a port of its own, or unset METRICS_PORT to serve it on PORT`]);
  if (production) {
    const problems = productionProblems(config, e);
    if (problems.length > 0) throw new ConfigError(problems);
  }
  return config;
}

/** What production needs and development generates for itself. Key files are validated when loaded. */
function productionProblems(config: Config, e: Environment): string[] {
  const problems: string[] = [];
  if (!e.ISSUER) problems.push('ISSUER is not set: production needs the public https URL of this server');
  else if (!config.issuer.startsWith('https://')) problems.push(`ISSUER must be https in production (got ${config.issuer})`);
  if (!config.database.url) problems.push('DATABASE_URL is not set: production needs PostgreSQL');
  const mtlsEndpoints = config.mutualTls?.endpointsUrl;
  if (mtlsEndpoints && !mtlsEndpoints.startsWith('https://')) problems.push(`MTLS_ENDPOINTS_URL must be https in production (got ${mtlsEndpoints}): clients send their certificates there`);
  if (config.webhook && !config.webhook.url.startsWith('https://')) problems.push(`WEBHOOK_URL must be https in production (got ${config.webhook.url}): events name your users`);
  if (!config.redis) problems.push('REDIS_URL is not set: production keeps sessions and short-lived tokens in Redis');
  if (config.cookieSecrets.length === 0 && !hasFile(config.keys.dir, '.cookie-secret')) {
    problems.push(
      'COOKIE_SECRETS is not set and keys/ holds no *.cookie-secret: give one or more random secrets (32+ characters), comma-separated',
    );
  } else if (config.cookieSecrets.some((secret) => secret.length < 32)) {
    problems.push('COOKIE_SECRETS: every secret must be at least 32 characters');
  }
  if (config.clientSecretPeppers.length === 0) {
    problems.push('CLIENT_SECRET_PEPPERS is not set: give kid:secret (32+ random characters) to hash client secrets');
  } else if (config.clientSecretPeppers.some((pepper) => pepper.secret.length < 32)) {
    problems.push('CLIENT_SECRET_PEPPERS: every secret must be at least 32 characters');
  }
  if (config.mail.confirmationRequired && config.mail.transport === 'off') {
    problems.push('EMAIL_CONFIRMATION_REQUIRED needs SMTP_URL: nobody could sign in without the confirmation mail');
  }
  if (!hasFile(config.keys.dir, '.pem')) {
    problems.push(`no signing key in ${config.keys.dir}: add an RSA private key as <kid>.pem (see keys/README.md)`);
  }
  return problems;
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function hasFile(keysDir: string, suffix: string): boolean {
  try {
    return readdirSync(keysDir).some((name) => name.endsWith(suffix));
  } catch {
    return false;
  }
}
