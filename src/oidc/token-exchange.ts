/**
 * Token exchange (RFC 8693), for an API's back end that calls another API for the user who called it: it hands
 * back the user's access token (the subject token) and gets one for the other API, as the same user.
 *
 *   POST /token  grant_type=urn:ietf:params:oauth:grant-type:token-exchange
 *                subject_token=<the user's access token>  subject_token_type=urn:ietf:params:oauth:token-type:access_token
 *                resource=<the other API's indicator> (or audience=)  [scope=…]
 *
 * Who may: a client registered as the back end of the subject token's API (`tokenExchangeFrom`, web and service
 * clients, which authenticate), as Keycloak's standard token exchange asks the caller to be in the token's
 * audience. What it gets: a Bearer access token for one registered API, never a refresh or ID token; the scopes
 * are those the client is registered with on that API (as client credentials grants them), no wider than the
 * subject's own when the API is the subject's; it carries the user's roles and the subject's sign-in (auth_time,
 * acr, amr) and lives no longer than the subject token.
 *
 * Delegation (RFC 8693 §4.1): the token says who acts for the user, `act: { sub: <the back end's client id> }`,
 * with the subject token's own `act` nested inside when it was itself exchanged, so an API deep in a chain of
 * calls sees every back end the request went through (at most MAX_ACTORS). The calling client is the actor: it
 * authenticated, so an `actor_token` would say nothing more, and one is refused rather than ignored.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { ApiRecord } from '../apis/apis.js';
import type { UserRepository } from '../accounts/users.js';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import { type ClientRecord, TOKEN_EXCHANGE_GRANT } from '../clients/clients.js';
import { activeSince } from './accounts.js';
import type { Catalog } from './catalog.js';
import { looksLikeJwt } from './jwt-access-tokens.js';
import { jwtSigningOf, scopesAllowed } from './resource-servers.js';

export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** The `gty` of the access tokens an exchange issues. */
export const EXCHANGED_TOKEN_GTY = 'token_exchange';
/** The longest delegation chain an exchanged token may carry: back ends calling back ends this deep are a loop. */
export const MAX_ACTORS = 5;

/** RFC 8693's `act` claim: the actor, and the one it acted for in turn. */
export interface Actor {
  sub: string;
  act?: Actor;
}

/** The `act` claim of a token, when it is one of ours (a chain of objects each with a `sub`). */
function actorOf(value: unknown, depth = 0): Actor | undefined {
  if (value === null || typeof value !== 'object' || depth > MAX_ACTORS) return undefined;
  const { sub, act } = value as { sub?: unknown; act?: unknown };
  if (typeof sub !== 'string') return undefined;
  const nested = actorOf(act, depth + 1);
  return nested ? { sub, act: nested } : { sub };
}

const chainLength = (actor: Actor | undefined): number => (actor ? 1 + chainLength(actor.act) : 0);

/**
 * An exchanged opaque token has no grant to be revoked with (a grant per exchange would fill the user's list of
 * apps), so introspection asks its user instead: disabled, or signed out everywhere since it was issued, ends it.
 */
export async function exchangedTokenLive(users: UserRepository, token: { accountId?: string; iat?: number }): Promise<boolean> {
  return activeSince(token.accountId ? await users.findById(token.accountId) : undefined, token.iat);
}

export interface TokenExchangeDependencies {
  catalog: Catalog;
  users: UserRepository;
  audit: AuditSink;
  /** Verifies one of our JWT access tokens (./jwt-access-tokens.ts); throws when it is not one. */
  verifyJwtAccessToken: (token: string) => Promise<Record<string, unknown>>;
  /** APIs no exchange may issue for (the admin API: its tokens are a service client's own). */
  protectedIndicators: readonly string[];
  /** The algorithms keys/ holds keys for right now (an API's signingAlg must be one of them). */
  signingAlgs: () => readonly string[];
}

/** What the exchange needs to know of the subject token, whatever its format. */
interface SubjectToken {
  accountId: string;
  clientId: string;
  audiences: string[];
  scopes: string[];
  /** Epoch seconds. */
  issuedAt: number;
  expiresAt: number;
  signIn: { authTime?: number; acr?: string; amr?: string[] };
  /** Who acted for the user already, when the subject token was itself exchanged. */
  actor?: Actor;
}

/** A refusal with the reason it is audited under; `error` is what the client is answered. */
class Refusal extends Error {
  constructor(
    readonly reason: string,
    readonly error: Error,
  ) {
    super(reason);
  }
}

const epochNow = () => Math.floor(Date.now() / 1000);
const strings = (value: unknown): string[] => (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string' && item !== '');
const invalidSubject = (reason: string, description: string) => new Refusal(reason, new errors.InvalidRequest(`subject_token: ${description}`));

/** The sign-in a user's token says it comes from (RFC 9068 §2.2.1), kept for the tokens it is exchanged for. */
function signInClaims(claims: Record<string, unknown> | undefined): SubjectToken['signIn'] {
  const { auth_time: authTime, acr, amr } = claims ?? {};
  return {
    ...(typeof authTime === 'number' ? { authTime } : {}),
    ...(typeof acr === 'string' ? { acr } : {}),
    ...(Array.isArray(amr) ? { amr: strings(amr) } : {}),
  };
}

export function registerTokenExchangeGrant(provider: Provider, deps: TokenExchangeDependencies): void {
  /** A JWT access token of ours: its signature and lifetime are all there is to check (it is never stored). */
  const readJwt = async (token: string): Promise<SubjectToken> => {
    let payload: Record<string, unknown>;
    try {
      payload = await deps.verifyJwtAccessToken(token);
    } catch {
      throw invalidSubject('subject_token_invalid', 'not an unexpired access token issued here');
    }
    return {
      accountId: String(payload.sub),
      clientId: String(payload.client_id),
      audiences: strings(payload.aud),
      scopes: typeof payload.scope === 'string' ? strings(payload.scope.split(' ')) : [],
      issuedAt: Number(payload.iat),
      expiresAt: Number(payload.exp),
      signIn: signInClaims(payload),
      actor: actorOf(payload.act),
    };
  };

  /** An opaque access token: its record, and the grant it was issued under, must still be there. */
  const readOpaque = async (token: string): Promise<SubjectToken> => {
    const stored = await provider.AccessToken.find(token);
    if (!stored?.accountId || stored.isExpired) throw invalidSubject('subject_token_invalid', 'not an unexpired access token issued here');
    if (stored.grantId) {
      const grant = await provider.Grant.find(stored.grantId);
      if (!grant || grant.clientId !== stored.clientId || grant.accountId !== stored.accountId) {
        throw invalidSubject('subject_token_revoked', 'the access it was issued under has been revoked');
      }
    }
    return {
      accountId: stored.accountId,
      clientId: stored.clientId as string,
      audiences: strings(stored.aud),
      scopes: strings(stored.scope?.split(' ')),
      issuedAt: stored.iat as number,
      expiresAt: stored.exp as number,
      signIn: signInClaims(stored.extra as Record<string, unknown> | undefined),
      actor: actorOf((stored.extra as Record<string, unknown> | undefined)?.act),
    };
  };

  /** The subject token, checked: ours, a user's, of an app and an account still enabled, and for this client's API. */
  const readSubject = async (params: Record<string, unknown>, client: ClientRecord): Promise<SubjectToken> => {
    const token = params.subject_token;
    if (typeof token !== 'string' || !token) throw new Refusal('missing_subject_token', new errors.InvalidRequest('subject_token is required'));
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new Refusal('unsupported_subject_token_type', new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}: only access tokens issued here can be exchanged`));
    }
    const jwt = looksLikeJwt(token);
    const subject = jwt ? await readJwt(token) : await readOpaque(token);
    const issuedTo = await deps.catalog.client(subject.clientId);
    // A pairwise app's JWTs name the user by a subject of its sector, which cannot be turned back into the account
    // (an opaque token's record holds the account itself).
    if (jwt && issuedTo?.subjectType === 'pairwise') throw invalidSubject('subject_token_pairwise', 'tokens of an app with pairwise subjects cannot be exchanged');
    if (subject.accountId === subject.clientId) throw invalidSubject('subject_token_not_a_user', 'a client’s own token (client credentials) names no user to act for');
    if (!issuedTo) throw invalidSubject('subject_token_client_disabled', 'the app it was issued to is disabled or removed');
    if (!activeSince(await deps.users.findById(subject.accountId), subject.issuedAt)) {
      throw invalidSubject('subject_token_revoked', 'its user is disabled or has been signed out everywhere since');
    }
    if (!subject.audiences.some((audience) => client.tokenExchangeFrom.includes(audience))) {
      throw invalidSubject('subject_token_not_for_client', `it is not for an API this client is the back end of (${client.tokenExchangeFrom.join(', ')})`);
    }
    if (chainLength(subject.actor) >= MAX_ACTORS) {
      throw invalidSubject('delegation_chain_too_long', `it was exchanged ${MAX_ACTORS} times already: back ends calling each other this deep are a loop`);
    }
    return subject;
  };

  /** The one API asked for, registered and not protected. */
  const readTarget = async (params: Record<string, unknown>): Promise<ApiRecord> => {
    const targets = [...new Set([...strings(params.resource), ...strings(params.audience)])];
    if (targets.length === 0) throw new Refusal('missing_target', new errors.InvalidTarget('name the API the token is for with resource (or audience)'));
    if (targets.length > 1) throw new Refusal('many_targets', new errors.InvalidTarget('a token exchange issues a token for one API at a time'));
    const indicator = targets[0] as string;
    const api = deps.protectedIndicators.includes(indicator) ? undefined : await deps.catalog.api(indicator);
    if (!api) throw new Refusal('unknown_target', new errors.InvalidTarget(`no API this client may exchange tokens for is registered as ${indicator}`));
    return api;
  };

  /**
   * The scopes asked for (all the client may have when none are) that it is registered with on the API, and, on
   * the subject's own API, that the subject token has: an exchange never widens a token.
   */
  const grantedScopes = (requested: unknown, api: ApiRecord, client: ClientRecord, subject: SubjectToken): string[] => {
    let allowed = scopesAllowed(api, client.scope, true);
    if (subject.audiences.includes(api.indicator)) allowed = allowed.filter((scope) => subject.scopes.includes(scope));
    const asked = typeof requested === 'string' ? strings(requested.split(' ')) : [];
    if (asked.length === 0) return allowed;
    const granted = asked.filter((scope) => allowed.includes(scope));
    if (granted.length === 0) {
      const may = allowed.length > 0 ? `it may have ${allowed.join(' ')}` : 'it may have none of its scopes';
      throw new Refusal('invalid_scope', new errors.InvalidScope(`the client may not have ${asked.join(' ')} on ${api.indicator} by token exchange: ${may}`, requested as string));
    }
    return granted;
  };

  const exchange = async (ctx: KoaContextWithOIDC, client: ClientRecord) => {
    const params = ctx.oidc.params as Record<string, unknown>;
    if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
      throw new Refusal('actor_token', new errors.InvalidRequest('actor_token is not taken: the calling client is the actor, and the token names it in act'));
    }
    if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new Refusal('unsupported_requested_token_type', new errors.InvalidRequest(`requested_token_type: only ${ACCESS_TOKEN_TYPE} is issued`));
    }
    // oidc-provider's DPoP checks are inside its own grants, out of reach here: say so rather than issue Bearer tokens.
    if (client.requireDpop || ctx.get('dpop')) {
      throw new Refusal('dpop', new errors.InvalidRequest('token exchange issues Bearer access tokens only: send the request without a DPoP proof (and without requireDpop)'));
    }
    const subject = await readSubject(params, client);
    const api = await readTarget(params);
    const scope = grantedScopes(params.scope, api, client, subject).join(' ');
    const expiresIn = Math.min(api.accessTokenTtl, subject.expiresAt - epochNow());
    if (expiresIn < 1) throw invalidSubject('subject_token_invalid', 'not an unexpired access token issued here');
    const resourceServer = new provider.ResourceServer(api.indicator, {
      audience: api.indicator,
      scope,
      accessTokenTTL: expiresIn,
      accessTokenFormat: api.accessTokenFormat,
      jwt: jwtSigningOf(api, deps.signingAlgs()),
    });
    // No grant (see exchangedTokenLive): it lives within the subject token's life, and its user's decides the rest.
    const accessToken = new provider.AccessToken({
      accountId: subject.accountId,
      client: ctx.oidc.client,
      scope: scope || undefined,
      gty: EXCHANGED_TOKEN_GTY,
      resourceServer,
      expiresIn,
    } as unknown as ConstructorParameters<typeof provider.AccessToken>[0]);
    // Read by the access tokens' claims (src/oidc/accounts.ts): the sign-in behind the subject token, and who acts.
    const actor: Actor = { sub: client.clientId, ...(subject.actor ? { act: subject.actor } : {}) };
    ctx.oidc.entity('ExchangedSignIn', { ...subject.signIn, act: actor });
    ctx.oidc.entity('AccessToken', accessToken);
    const value = await accessToken.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: expiresIn,
      ...(scope ? { scope } : {}),
    };
    return { subject, api, scope, actor };
  };

  const handler = async (ctx: KoaContextWithOIDC) => {
    const clientId = ctx.oidc.client?.clientId as string;
    const audit = (outcome: 'success' | 'failure', accountId: string | undefined, detail: Record<string, unknown>) =>
      deps.audit.record({ type: 'token_exchange', outcome, accountId, clientId, ...requestFacts(ctx), detail });
    const client = await deps.catalog.client(clientId);
    try {
      if (!client?.tokenExchangeFrom.length || ctx.oidc.client?.clientAuthMethod === 'none') {
        throw new Refusal('not_allowed', new errors.UnauthorizedClient('the client may not exchange tokens (register it with tokenExchangeFrom)'));
      }
      const { subject, api, scope, actor } = await exchange(ctx, client);
      audit('success', subject.accountId, { from: subject.clientId, subjectAudience: subject.audiences, audience: api.indicator, scope, act: actor });
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      audit('failure', undefined, { reason: error.reason });
      throw error.error;
    }
  };

  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, handler, [
    'subject_token',
    'subject_token_type',
    'actor_token',
    'actor_token_type',
    'requested_token_type',
    'audience',
    'resource',
    'scope',
  ], ['resource', 'audience']); // RFC 8693 allows several; readTarget answers why one is all we issue for
}
