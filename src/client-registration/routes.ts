/**
 * Dynamic client registration (RFC 7591) and its management (RFC 7592), when CLIENT_REGISTRATION lets apps
 * register themselves (`token`: with an initial access token from an administrator; `open`: anyone, as MCP
 * clients expect):
 *
 *   POST   /reg               metadata → 201, the client with its secret (once) and a registration access token
 *   GET    /reg/:clientId     the registration as it stands (the registration access token as Bearer)
 *   PUT    /reg/:clientId     the registration replaced (its kind, authentication and keys stay)
 *   DELETE /reg/:clientId     the client deleted, with its grants and tokens
 *
 * Every refusal is RFC 7591's JSON error (`invalid_redirect_uri`, `invalid_client_metadata`) or RFC 6750's
 * `invalid_token` with a challenge; registrations are limited per client address, and audited
 * `client_registered`, `client_registration_updated`, `client_registration_deleted`. Other instances see a
 * change within CLIENT_CACHE_TTL_MS, as for the CLI's.
 */
import { bodyParser } from '@koa/bodyparser';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import type { ClientChanges, ClientRecord, ClientRepository } from '../clients/clients.js';
import type { Config } from '../config.js';
import { InputError, NotFoundError } from '../errors.js';
import type { Catalog } from '../oidc/catalog.js';
import { isNativeApp } from '../oidc/client-adapter.js';
import { describeWait } from '../security/failure-limiter.js';
import type { SecurityLimits } from '../security/limits.js';
import { OUTAGE_ANSWER, isStoreOutage } from '../store/outages.js';
import { type Registration, RegistrationError, metadataOf, refuseCalledUrls, refuseUntrustedHosts, registrationOf, registrationRefusal } from './metadata.js';
import { CLIENT_REGISTRATION_PATH } from './path.js';
import type { RegistrationTokens } from './tokens.js';
import { TLS_SUBJECT_METADATA } from '../clients/client-certificates.js';

export interface ClientRegistrationDependencies {
  config: Config;
  /** Clients as made by registration: audited `by: client-registration`. */
  clients: ClientRepository;
  tokens: RegistrationTokens;
  catalog: Catalog;
  limits: SecurityLimits;
  audit: AuditSink;
}

/** Who the clients' audit events say made them: the app itself, through this endpoint. */
export const REGISTRATION_ACTOR = 'client-registration';

const JSON_LIMIT = '64kb';

const parseJson = bodyParser({
  enableTypes: ['json'],
  jsonLimit: JSON_LIMIT,
  onError: (error) => {
    const tooLarge = (error as { status?: number }).status === 413;
    throw new RegistrationError('invalid_client_metadata', tooLarge ? `the metadata is over ${JSON_LIMIT}` : 'the metadata is not valid JSON');
  },
});

/** A JSON object as the body, or a refusal saying what came instead. */
const readMetadata: Middleware = async (ctx, next) => {
  if (!ctx.request.is('application/json', '+json')) {
    return answer(ctx, 415, { error: 'invalid_client_metadata', error_description: 'the metadata must be JSON (Content-Type: application/json)' });
  }
  await parseJson(ctx, async () => {
    const body = (ctx.request as { body?: unknown }).body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return answer(ctx, 400, { error: 'invalid_client_metadata', error_description: 'the metadata must be a JSON object' });
    }
    await next();
  });
};

function answer(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

/** RFC 6750 §3.1: a missing or wrong token; without one, a bare challenge. */
function invalidToken(ctx: Context, description: string): void {
  const bearer = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
  // A header takes printable ASCII only, and no double quote inside the quoted string.
  const quoted = description.replace(/[^\x20-\x7e]|"/g, "'");
  ctx.set('WWW-Authenticate', bearer ? `Bearer error="invalid_token", error_description="${quoted}"` : 'Bearer');
  answer(ctx, 401, { error: 'invalid_token', error_description: description });
}

const bearerToken = (ctx: Context) => /^Bearer\s+([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('authorization'))?.[1];

export function createClientRegistrationRoutes(deps: ClientRegistrationDependencies): Middleware {
  const { config, clients, tokens, catalog } = deps;
  const router = new Router({ prefix: CLIENT_REGISTRATION_PATH });
  const registrationUri = (clientId: string) => `${config.issuer}${CLIENT_REGISTRATION_PATH}/${encodeURIComponent(clientId)}`;

  // Browser-based apps (an MCP client in a web page) register from their own origin, with no cookies.
  router.use(async (ctx, next) => {
    ctx.set('Access-Control-Allow-Origin', '*');
    if (ctx.method !== 'OPTIONS') return next();
    ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE');
    ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    ctx.set('Access-Control-Max-Age', '600');
    ctx.status = 204;
  });
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (error instanceof RegistrationError) return answer(ctx, 400, { error: error.code, error_description: error.message });
      if (error instanceof InputError) {
        const refusal = registrationRefusal(error.message);
        return answer(ctx, 400, { error: refusal.code, error_description: refusal.message });
      }
      if (isStoreOutage(error)) return answer(ctx, 503, OUTAGE_ANSWER);
      throw error;
    }
  });

  router.post('/', async (ctx, next) => {
    // Registrations made are what is counted (a refused one adds no client); the allowance is checked first.
    const limiter = deps.limits.clientRegistrationsByIp;
    const spent = await limiter.get(ctx.ip);
    if (spent && spent.consumedPoints >= limiter.points) {
      ctx.set('Retry-After', String(Math.ceil(Math.max(1000, spent.msBeforeNext) / 1000)));
      return answer(ctx, 429, { error: 'invalid_request', error_description: `too many registrations from this address: try again in ${describeWait(Math.max(1000, spent.msBeforeNext))}` });
    }
    return next();
  }, readMetadata, async (ctx) => {
    const presented = bearerToken(ctx);
    // With `open`, a token is not needed, but one presented is still checked: it lets a service register.
    const initialToken = presented ? await tokens.checkInitial(presented) : undefined;
    if ((presented || config.clientRegistration === 'token') && !initialToken) {
      return invalidToken(ctx, presented ? 'the initial access token is unknown, expired or used up' : 'registration needs an initial access token from an administrator');
    }
    const registration = registrationOf(ctx.request.body, { allowServices: initialToken !== undefined });
    if (!initialToken && config.allowPrivateNetworkCalls) refuseCalledUrls(registration.client);
    if (!initialToken) refuseUntrustedHosts(registration, config.clientRegistrationTrustedHosts);
    const { client, secret } = await clients.create(registration.client);
    let registrationAccessToken: string;
    try {
      if (initialToken && !(await tokens.useInitial(initialToken))) {
        // Another registration took the token's last use between the check and now: this one did not happen.
        await clients.remove(client.clientId);
        return invalidToken(ctx, 'the initial access token is unknown, expired or used up');
      }
      await deps.limits.clientRegistrationsByIp.penalty(ctx.ip);
      registrationAccessToken = await tokens.issueFor(client.clientId, initialToken ?? 'open', registration.description);
    } catch (error) {
      // A client nobody can manage is not left behind (the store failed midway): the app registers again.
      await clients.remove(client.clientId).catch(() => undefined);
      throw error;
    }
    const via = initialToken ?? 'open';
    deps.audit.record({ type: 'client_registered', outcome: 'success', clientId: client.clientId, ...requestFacts(ctx), detail: { via, kind: client.type, name: client.name } });
    answer(ctx, 201, {
      ...metadataOf(client, registration.description),
      ...(secret ? { client_secret: secret } : {}),
      registration_access_token: registrationAccessToken,
      registration_client_uri: registrationUri(client.clientId),
    });
  });

  /** The registered client the path names, when the Bearer token is its registration access token. */
  const registered = async (ctx: Context): Promise<ClientRecord | undefined> => {
    const token = bearerToken(ctx);
    const clientId = token ? await tokens.clientOf(token) : undefined;
    // A token for another client, or none: the same answer, so that it tells nothing about which clients exist.
    const client = clientId && clientId === ctx.params.clientId ? await clients.find(clientId) : undefined;
    if (!client) invalidToken(ctx, 'the registration access token is not this client’s');
    return client;
  };
  const information = async (ctx: Context, client: ClientRecord) =>
    answer(ctx, 200, {
      ...metadataOf(client, await tokens.descriptionOf(client.clientId)),
      registration_access_token: bearerToken(ctx),
      registration_client_uri: registrationUri(client.clientId),
    });

  router.get('/:clientId', async (ctx) => {
    const client = await registered(ctx);
    if (client) await information(ctx, client);
  });

  router.put('/:clientId', readMetadata, async (ctx) => {
    const client = await registered(ctx);
    if (!client) return;
    const body = ctx.request.body as Record<string, unknown>;
    refuseUnchangeable(body, client, (secret) => clients.verifySecret(client, secret));
    const replacement = registrationOf(body, { allowServices: client.type === 'service' });
    // An app that registered openly stays under the rules of open registration when it replaces its metadata.
    if ((await tokens.registeredVia(client.clientId)) === 'open') {
      if (config.allowPrivateNetworkCalls) refuseCalledUrls(replacement.client);
      refuseUntrustedHosts(replacement, config.clientRegistrationTrustedHosts);
    }
    await clients.update(client.clientId, changesFor(client, replacement));
    await tokens.describe(client.clientId, replacement.description);
    catalog.forgetClient(client.clientId);
    deps.audit.record({ type: 'client_registration_updated', outcome: 'success', clientId: client.clientId, ...requestFacts(ctx) });
    await information(ctx, await clients.require(client.clientId));
  });

  router.delete('/:clientId', async (ctx) => {
    const client = await registered(ctx);
    if (!client) return;
    await clients.remove(client.clientId).catch((error: unknown) => {
      // Deleted meanwhile by another request or an administrator: deleted all the same.
      if (!(error instanceof NotFoundError)) throw error;
    });
    catalog.forgetClient(client.clientId);
    deps.audit.record({ type: 'client_registration_deleted', outcome: 'success', clientId: client.clientId, ...requestFacts(ctx) });
    ctx.status = 204;
  });

  return router.routes() as unknown as Middleware;
}

/**
 * RFC 7592 §2.2: the update names its client, does not send what the server issued, and a secret it sends must
 * be the client's.
 */
function refuseUnchangeable(body: Record<string, unknown>, client: ClientRecord, secretMatches: (secret: string) => boolean): void {
  if (body.client_id !== client.clientId) throw new RegistrationError('invalid_client_metadata', 'client_id: must be this client’s');
  const issued = ['registration_access_token', 'registration_client_uri', 'client_secret_expires_at', 'client_id_issued_at'].find((name) => body[name] !== undefined);
  if (issued) throw new RegistrationError('invalid_client_metadata', `${issued}: is the server’s to issue, not part of an update`);
  if (body.client_secret !== undefined && (typeof body.client_secret !== 'string' || !secretMatches(body.client_secret))) {
    throw new RegistrationError('invalid_client_metadata', 'client_secret: is not this client’s');
  }
}

/** The changes that make `client` what `replacement` registers; what cannot change is refused, by name. */
function changesFor(client: ClientRecord, replacement: Registration): ClientChanges {
  const next = replacement.client;
  const unchangeable: [string, unknown, unknown][] = [
    ['token_endpoint_auth_method', client.tokenEndpointAuthMethod, next.tokenEndpointAuthMethod ?? 'none'],
    ['grant_types', client.type, next.type],
    ['jwks', JSON.stringify(client.metadata.jwks), JSON.stringify(next.jwks)],
    ['jwks_uri', client.metadata.jwks_uri, next.jwksUri],
    ['subject_type', client.subjectType, next.subjectType],
    ['application_type', isNativeApp(client), next.nativeApp ?? false],
    ['sector_identifier_uri', client.sectorIdentifierUri ?? undefined, next.sectorIdentifierUri],
    ...Object.entries(TLS_SUBJECT_METADATA).map(([field, property]): [string, unknown, unknown] => [property, client.metadata[property], next[field as keyof typeof TLS_SUBJECT_METADATA]]),
  ];
  const changed = unchangeable.find(([, was, now]) => was !== now);
  if (changed) throw new RegistrationError('invalid_client_metadata', `${changed[0]}: cannot change; register a new client instead`);
  return {
    name: next.name,
    redirectUris: next.redirectUris,
    postLogoutRedirectUris: next.postLogoutRedirectUris,
    ...(next.scope !== undefined ? { scope: next.scope } : {}),
    // Only a web client has one to remove (the others are refused one).
    ...(client.type === 'web' || next.backchannelLogoutUri ? { backchannelLogoutUri: next.backchannelLogoutUri ?? null } : {}),
    ...(next.backchannelLogoutSessionRequired !== undefined ? { backchannelLogoutSessionRequired: next.backchannelLogoutSessionRequired } : {}),
    requireDpop: next.requireDpop,
    certificateBoundTokens: next.certificateBoundTokens,
    requirePar: next.requirePar,
    requireSignedRequestObject: next.requireSignedRequestObject,
    signedUserinfo: next.signedUserinfo,
    signingAlg: next.signingAlg,
  };
}
