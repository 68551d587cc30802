/**
 * The admin REST API under /admin/v1: clients, users, their grants, APIs and the audit log over JSON. It is
 * itself a resource server of this issuer (./auth.ts) and is registered in the `apis` table on start. Every
 * operation is the repositories' own (the CLI calls the same methods), made with the actor `admin-api`, so each
 * change lands in the audit log as made through this API, by which admin client and from where; a request
 * refused for its token or scope is recorded as `admin_refused`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { bodyParser } from '@koa/bodyparser';
import { Router } from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type { z } from 'zod';
import { passkeyView } from '../accounts/passkeys.js';
import { SessionDirectory, type SessionEndListener } from '../accounts/sessions.js';
import type { User } from '../accounts/users.js';
import { ApiRepository, apiRepositoryOptions } from '../apis/apis.js';
import type { AuditEvent, AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import { queryAuditEvents } from '../audit/audit-query.js';
import { RegistrationTokens } from '../client-registration/tokens.js';
import { type ClientRecord, ClientRepository, clientRepositoryOptions } from '../clients/clients.js';
import type { Config } from '../config.js';
import { ConflictError, InputError, NotFoundError, parseInput } from '../errors.js';
import type { KeyRing } from '../keys/key-ring.js';
import type { Logger } from '../logger.js';
import { LinkMailSender } from '../mail/link-mails.js';
import { MailNotSentError, MailOutbox } from '../mail/outbox.js';
import type { MailTransport } from '../mail/transport.js';
import { LockAdministration } from '../security/lock-administration.js';
import type { Services } from '../services.js';
import { ADMIN_API_PATH, ADMIN_READ_SCOPE, ADMIN_SCOPE, type AdminCaller, adminApiIndicator, requireAdminToken } from './auth.js';
import { OUTAGE_ANSWER, UNSTORABLE_TEXT_DESCRIPTION, isStoreOutage, isUnstorableText, logRefusedForOutage } from '../store/outages.js';
import { WebhookDelivery } from '../webhooks/webhook-delivery.js';
import { passwordExpiresAt } from '../accounts/password-expiry.js';
import { openApiDocument } from './openapi.js';
import { MAX_KEEP_OLD_SECONDS, auditQuery, bodySchemas, groupMembersQuery, listUsersQuery } from './schemas.js';
import { accountOfSubject } from '../oidc/pairwise-subjects.js';

export { ADMIN_API_PATH, ADMIN_READ_SCOPE, ADMIN_SCOPE, adminApiIndicator } from './auth.js';

export const ADMIN_ACTOR = 'admin-api';
/** Admin tokens are short-lived: they are checked offline and cannot be revoked. */
const ADMIN_TOKEN_TTL_SECONDS = 600;
const DEFAULT_KEEP_OLD_SECONDS = 86_400;

export interface AdminApiDependencies {
  config: Config;
  services: Services;
  keyRing: KeyRing;
  /** Where changes are recorded (the server's sink, so that they are also counted). */
  audit: AuditSink;
  logger: Logger;
  /** Told of the sessions an administrator ends here (back-channel logout). */
  sessionEndListener?: SessionEndListener;
  /** How mail leaves (links sent to users); undefined when this server sends none. */
  mailTransport?: MailTransport;
}

/** Registers the admin API as a resource server unless it is; safe when several instances start at once. */
export async function ensureAdminApiRegistered(services: Services, issuer: string, logger: Logger): Promise<void> {
  const indicator = adminApiIndicator(issuer);
  const existing = await services.apis.findByIndicator(indicator);
  if (existing) {
    if (existing.accessTokenFormat !== 'jwt') logger.warn({ indicator }, 'the admin API must issue jwt access tokens; admin requests will be refused');
    return;
  }
  try {
    await services.apis.create({
      indicator,
      name: 'Admin API',
      scopes: [ADMIN_SCOPE, ADMIN_READ_SCOPE],
      accessTokenTtl: ADMIN_TOKEN_TTL_SECONDS,
      accessTokenFormat: 'jwt',
    });
    services.catalog.forgetApis();
  } catch (error) {
    // Another instance registered it between our look and our insert.
    if (await services.apis.findByIndicator(indicator)) return;
    throw error;
  }
}

/** Public view of a client: never a secret hash, only when each live secret expires. */
const clientView = (client: ClientRecord) => {
  const { secrets, ...rest } = client;
  return { ...rest, secrets: secrets.map((secret) => ({ expiresAt: secret.expiresAt })) };
};


const parse = <T extends z.ZodType>(schema: T, input: unknown): z.output<T> => parseInput(schema, input ?? {});

const body = (ctx: Context) => (ctx.request as { body?: unknown }).body ?? {};

const JSON_LIMIT = '64kb';

const parseJson = bodyParser({
  enableTypes: ['json'],
  jsonLimit: JSON_LIMIT,
  onError: (error, ctx) => {
    if ((error as { status?: number }).status === 413) ctx.throw(413, `the body is over ${JSON_LIMIT}`);
    ctx.throw(400, 'the body is not valid JSON');
  },
});

/**
 * Reads a JSON body. A body of another type is refused rather than ignored (a form-encoded
 * `keepOldForSeconds=0` would otherwise rotate with the default), and so is JSON that is not an object.
 */
const readJson: Middleware = async (ctx, next) => {
  // An empty body (Content-Length: 0, as clients send on a bare POST) is no body, whatever its type.
  const hasBody = Boolean(ctx.request.length) || ctx.get('transfer-encoding') !== '';
  if (hasBody && !ctx.request.is('application/json', '+json')) {
    ctx.throw(415, `the body must be JSON (Content-Type: application/json), not ${ctx.request.type || 'untyped'}`);
  }
  await parseJson(ctx, async () => {
    const parsed = (ctx.request as { body?: unknown }).body;
    if (ctx.request.is('application/json', '+json') && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) {
      ctx.throw(400, 'the body must be a JSON object');
    }
    await next();
  });
};

/** The `error` code of a refusal by HTTP status, where it is more telling than invalid_request. */
const ERROR_CODES: Record<number, string> = { 413: 'request_too_large', 415: 'unsupported_media_type' };

/** Runs middleware in order, each `next` calling the following one (as Koa does for `app.use`). */
function chain(middleware: Middleware[]): (ctx: Context, next: Next) => Promise<void> {
  return async (ctx, next) => {
    const run = async (index: number): Promise<void> => {
      const current = middleware[index];
      if (current) await current(ctx, () => run(index + 1));
      else await next();
    };
    await run(0);
  };
}

function errorResponses(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && !ctx.body) {
        ctx.status = 404;
        ctx.body = { error: 'not_found', error_description: `no route for ${ctx.method} ${ctx.path}` };
      } else if (ctx.status === 405 && !ctx.body) {
        ctx.body = { error: 'method_not_allowed', error_description: `${ctx.method} is not allowed on ${ctx.path}` };
      }
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (error instanceof NotFoundError) {
        ctx.status = 404;
        ctx.body = { error: 'not_found', error_description: error.message };
      } else if (error instanceof ConflictError) {
        ctx.status = 409;
        ctx.body = { error: 'conflict', error_description: error.message };
      } else if (error instanceof InputError) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: error.message };
      } else if (error instanceof MailNotSentError) {
        ctx.status = 502;
        ctx.body = { error: 'mail_not_sent', error_description: error.message };
      } else if (isUnstorableText(error)) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: UNSTORABLE_TEXT_DESCRIPTION };
      } else if (status && status >= 400 && status < 500) {
        ctx.status = status;
        ctx.body = { error: ERROR_CODES[status] ?? 'invalid_request', error_description: (error as { expose?: boolean }).expose ? (error as Error).message : 'the request was refused' };
      } else if (isStoreOutage(error)) {
        logRefusedForOutage(logger, ctx.state.requestId, error);
        ctx.status = 503;
        ctx.body = OUTAGE_ANSWER;
      } else {
        logger.error({ err: error, requestId: ctx.state.requestId }, 'admin API error');
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'an unexpected error occurred; it has been logged' };
      }
    }
  };
}

/** Who made the admin request in progress and from where, for the audit events its changes record. */
interface AdminCall {
  adminClientId: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

/**
 * The repositories here are built once and record through this sink, which adds the call in progress: the
 * admin client that acted (in `detail.adminClientId`; `clientId` stays the client changed) and the request's
 * ip, user agent and id. AsyncLocalStorage carries the call because the same repository methods serve the CLI,
 * where no request exists; threading an actor through each of them would change every signature for this.
 */
function auditingCalls(audit: AuditSink): { sink: AuditSink; during: Middleware } {
  const calls = new AsyncLocalStorage<AdminCall>();
  const sink: AuditSink = {
    record(event: AuditEvent) {
      const call = calls.getStore();
      if (!call) return audit.record(event);
      const { adminClientId, ...facts } = call;
      audit.record({ ...facts, ...event, detail: { ...event.detail, adminClientId } });
    },
    flush: () => audit.flush?.() ?? Promise.resolve(),
  };
  const during: Middleware = (ctx, next) => {
    const caller = ctx.state.adminCaller as AdminCaller;
    return calls.run({ adminClientId: caller.clientId, ...requestFacts(ctx) }, next);
  };
  return { sink, during };
}

/** Records an admin request refused for its token (401) or scope (403) as one `admin_refused` event. */
function auditRefusals(audit: AuditSink): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.status !== 401 && ctx.status !== 403) return;
    const body = ctx.body as { error?: string; error_description?: string } | undefined;
    audit.record({
      type: 'admin_refused',
      outcome: 'failure',
      ...requestFacts(ctx),
      detail: { status: ctx.status, reason: body?.error_description ?? body?.error ?? null, method: ctx.method, path: ctx.path },
    });
  };
}

export async function createAdminApi(deps: AdminApiDependencies): Promise<Middleware> {
  const { config, services, keyRing, logger, sessionEndListener } = deps;
  const { sink: audit, during: auditedAsCaller } = auditingCalls(deps.audit);
  await ensureAdminApiRegistered(services, config.issuer, logger);
  const { db, catalog } = services;
  const actor = ADMIN_ACTOR;
  const sessions = new SessionDirectory(services.sessions.store, { audit, actor, listener: sessionEndListener });
  const users = services.users.actingAs({ audit, actor, sessions });
  const clients = new ClientRepository(db, clientRepositoryOptions(config, audit, actor));
  const apis = new ApiRepository(db, apiRepositoryOptions(config, audit, actor, [adminApiIndicator(config.issuer)]));
  const groups = services.groups.actingAs({ audit, actor });
  const locks = new LockAdministration(services.limits, { audit, actor });
  const outbox = deps.mailTransport && new MailOutbox(deps.mailTransport, audit, logger);
  const linkMails = new LinkMailSender({ links: services.emailLinks, issuer: config.issuer, outbox, audit, actor });
  const sendLinkMail = async (id: string, purpose: 'password_reset' | 'email_confirmation') => linkMails.send(await users.require(id), purpose);
  const document = openApiDocument(config.issuer);
  // The user as stored, the roles their tokens carry (their groups' too), and when their password expires
  // (PASSWORD_MAX_AGE; null when it does not).
  const userView = (user: User) => ({
    ...user,
    effectiveRoles: groups.effectiveRoles(user),
    passwordExpiresAt: passwordExpiresAt(user, config.passwords.maxAgeSeconds) ?? null,
  });

  const router = new Router({ prefix: ADMIN_API_PATH });

  // Clients
  router.get('/clients', async (ctx) => {
    ctx.body = { clients: (await clients.list()).map(clientView) };
  });
  router.post('/clients', async (ctx) => {
    const input = parse(bodySchemas.NewClient, body(ctx));
    const { client, secret } = await clients.create(input);
    catalog.forgetClient(client.clientId); // discovery lists an opted-in grant (token exchange) it may now use
    ctx.status = 201;
    ctx.body = { ...clientView(client), ...(secret ? { clientSecret: secret } : {}) };
  });
  router.get('/clients/:id', async (ctx) => {
    ctx.body = clientView(await clients.require(ctx.params.id as string));
  });
  router.get('/clients/:id/subjects/:sub', async (ctx) => {
    const client = await clients.require(ctx.params.id as string);
    const subject = String(ctx.params.sub).slice(0, 255);
    const accountId = await accountOfSubject(services.db, services.pairwiseSalt, client, subject);
    const user = accountId ? await users.findById(accountId) : undefined;
    if (!user) throw new NotFoundError(`no user is ${subject} to ${client.clientId}`);
    ctx.body = userView(user);
  });
  router.patch('/clients/:id', async (ctx) => {
    const changes = parse(bodySchemas.ClientChanges, body(ctx));
    const client = await clients.update(ctx.params.id as string, changes);
    catalog.forgetClient(client.clientId);
    ctx.body = clientView(client);
  });
  router.delete('/clients/:id', async (ctx) => {
    await clients.remove(ctx.params.id as string);
    catalog.forgetClient(ctx.params.id as string);
    ctx.status = 204;
  });
  router.post('/clients/:id/secret', async (ctx) => {
    const { keepOldUntil, keepOldForSeconds } = parse(bodySchemas.RotateSecret, body(ctx));
    let seconds = keepOldForSeconds ?? DEFAULT_KEEP_OLD_SECONDS;
    if (keepOldUntil) {
      seconds = Math.ceil((Date.parse(keepOldUntil) - Date.now()) / 1000);
      if (seconds < 0) throw new InputError('keepOldUntil: must not be in the past (use keepOldForSeconds: 0 to stop the old secrets now)');
      if (seconds > MAX_KEEP_OLD_SECONDS) throw new InputError(`keepOldUntil: at most ${MAX_KEEP_OLD_SECONDS / 86_400} days from now`);
    }
    const clientId = ctx.params.id as string;
    const { secret, oldSecretsExpireAt } = await clients.rotateSecret(clientId, seconds);
    catalog.forgetClient(clientId);
    ctx.body = { clientId, clientSecret: secret, oldSecretsExpireAt };
  });
  for (const action of ['disable', 'enable'] as const) {
    router.post(`/clients/:id/${action}`, async (ctx) => {
      const client = await clients[action](ctx.params.id as string);
      catalog.forgetClient(client.clientId);
      ctx.body = clientView(client);
    });
  }

  // Initial access tokens of dynamic client registration (src/client-registration/).
  const registrationTokens = new RegistrationTokens(db, { audit, actor });
  router.get('/client-registration-tokens', async (ctx) => {
    ctx.body = { tokens: await registrationTokens.listInitial() };
  });
  router.post('/client-registration-tokens', async (ctx) => {
    const { uses, expiresInSeconds } = parse(bodySchemas.NewRegistrationToken, body(ctx));
    const { token, record } = await registrationTokens.createInitial({ uses, expiresInSeconds });
    ctx.status = 201;
    ctx.body = { ...record, initialAccessToken: token };
  });
  router.delete('/client-registration-tokens/:id', async (ctx) => {
    if (!(await registrationTokens.revokeInitial(ctx.params.id as string))) throw new NotFoundError(`no initial access token ${ctx.params.id}`);
    ctx.status = 204;
  });

  router.get('/clients/:id/lock', async (ctx) => {
    const client = await clients.require(ctx.params.id as string);
    ctx.body = { lockedUntil: await locks.clientLockedUntil(client.clientId) };
  });
  router.delete('/clients/:id/lock', async (ctx) => {
    const client = await clients.require(ctx.params.id as string);
    ctx.body = { wasLockedUntil: await locks.unlockClient(client.clientId) };
  });

  // Users
  router.get('/users', async (ctx) => {
    const { cursor, ...query } = parse(listUsersQuery, ctx.query);
    const page = await users.search({ ...query, after: cursor });
    ctx.body = { users: page.users.map(userView), next: page.next };
  });
  router.post('/users', async (ctx) => {
    const input = parse(bodySchemas.NewUser, body(ctx));
    ctx.status = 201;
    ctx.body = userView(await users.create(input));
  });
  router.get('/users/:id', async (ctx) => {
    ctx.body = userView(await users.require(ctx.params.id as string));
  });
  router.patch('/users/:id', async (ctx) => {
    const changes = parse(bodySchemas.UserChanges, body(ctx));
    ctx.body = userView(await users.update(ctx.params.id as string, changes));
  });
  router.delete('/users/:id', async (ctx) => {
    await users.remove(ctx.params.id as string);
    ctx.status = 204;
  });
  router.post('/users/:id/password', async (ctx) => {
    const { password, temporary } = parse(bodySchemas.SetPassword, body(ctx));
    ctx.body = userView(await users.setPassword(ctx.params.id as string, password, { temporary }));
  });
  router.delete('/users/:id/password', async (ctx) => {
    ctx.body = userView(await users.removePassword(ctx.params.id as string));
  });
  for (const action of ['disable', 'enable', 'revokeSessions'] as const) {
    const path = action === 'revokeSessions' ? 'revoke-sessions' : action;
    router.post(`/users/:id/${path}`, async (ctx) => {
      ctx.body = userView(await users[action](ctx.params.id as string));
    });
  }
  router.delete('/users/:id/totp', async (ctx) => {
    ctx.body = userView((await users.resetTwoFactor(ctx.params.id as string)).user);
  });
  router.post('/users/:id/password-reset-mail', async (ctx) => {
    ctx.body = await sendLinkMail(ctx.params.id as string, 'password_reset');
  });
  router.post('/users/:id/email-confirmation-mail', async (ctx) => {
    ctx.body = await sendLinkMail(ctx.params.id as string, 'email_confirmation');
  });
  router.get('/users/:id/lock', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    ctx.body = { lockedUntil: await locks.accountLockedUntil(user.email) };
  });
  router.delete('/users/:id/lock', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    ctx.body = { wasLockedUntil: await locks.unlockAccount(user) };
  });
  router.get('/users/:id/sessions', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    ctx.body = { sessions: await sessions.list(user.id) };
  });
  router.delete('/users/:id/sessions/:uid', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    await sessions.end(user.id, ctx.params.uid as string);
    ctx.status = 204;
  });
  router.get('/users/:id/passkeys', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    ctx.body = { passkeys: (await services.passkeys.list(user.id)).map(passkeyView) };
  });
  router.delete('/users/:id/passkeys/:passkeyId', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    if (!(await services.passkeys.remove(user.id, ctx.params.passkeyId as string, actor))) throw new NotFoundError('the user has no such passkey');
    ctx.status = 204;
  });
  router.get('/users/:id/identities', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    const identities = await services.linkedIdentities.listFor(user.id);
    ctx.body = { identities: identities.map(({ userId: _, ...identity }) => identity) };
  });
  router.delete('/users/:id/identities/:provider', async (ctx) => {
    const user = await users.require(ctx.params.id as string);
    await services.linkedIdentities.unlink(user.id, ctx.params.provider as string, actor);
    ctx.status = 204;
  });
  router.get('/users/:id/grants', async (ctx) => {
    ctx.body = { grants: await users.listGrants(ctx.params.id as string) };
  });
  router.delete('/users/:id/grants/:grantId', async (ctx) => {
    await users.revokeGrant(ctx.params.id as string, ctx.params.grantId as string);
    ctx.status = 204;
  });

  // Client addresses, as the brute-force limits count them
  router.get('/ips/:address/locks', async (ctx) => {
    ctx.body = await locks.ipLockedUntil(ctx.params.address as string);
  });
  router.delete('/ips/:address/locks', async (ctx) => {
    ctx.body = { wasLockedUntil: await locks.unlockIp(ctx.params.address as string) };
  });

  // Webhooks (src/webhooks/): where delivery to WEBHOOK_URL stands, and getting a held queue going again
  const webhook = config.webhook && new WebhookDelivery(db, config.webhook);
  const webhookStatus = async () => {
    const status = await webhook?.status();
    if (!status) throw new NotFoundError(webhook ? 'no server has sent to WEBHOOK_URL yet: it starts at its first run' : 'WEBHOOK_URL is not set: no audit events are sent');
    return status;
  };
  router.get('/webhook', async (ctx) => {
    ctx.body = await webhookStatus();
  });
  router.post('/webhook/retry', async (ctx) => {
    await webhook?.retryNow();
    ctx.body = await webhookStatus();
  });
  router.post('/webhook/skip', async (ctx) => {
    await webhookStatus();
    const skipped = (await webhook?.skipHeld()) ?? null;
    if (skipped) audit.record({ type: 'webhook_event_skipped', outcome: 'success', detail: { by: actor, event: skipped.id, eventType: skipped.type } });
    ctx.body = { skipped };
  });

  // Groups
  router.get('/groups', async (ctx) => {
    ctx.body = { groups: await groups.list() };
  });
  router.post('/groups', async (ctx) => {
    const input = parse(bodySchemas.NewGroup, body(ctx));
    ctx.status = 201;
    ctx.body = await groups.create(input);
  });
  router.get('/groups/:name', async (ctx) => {
    ctx.body = await groups.require(ctx.params.name as string);
  });
  router.patch('/groups/:name', async (ctx) => {
    ctx.body = await groups.update(ctx.params.name as string, parse(bodySchemas.GroupChanges, body(ctx)));
  });
  router.delete('/groups/:name', async (ctx) => {
    await groups.remove(ctx.params.name as string);
    ctx.status = 204;
  });
  router.get('/groups/:name/members', async (ctx) => {
    const page = parse(groupMembersQuery, ctx.query);
    const members = await groups.members(ctx.params.name as string, { limit: page.limit, after: page.cursor });
    ctx.body = { members, next: members.length === page.limit ? (members.at(-1)?.id ?? null) : null };
  });

  // APIs
  router.get('/apis', async (ctx) => {
    ctx.body = { apis: await apis.list() };
  });
  router.post('/apis', async (ctx) => {
    const input = parse(bodySchemas.NewApi, body(ctx));
    const api = await apis.create(input);
    catalog.forgetApis();
    ctx.status = 201;
    ctx.body = api;
  });
  router.patch('/apis/:indicator', async (ctx) => {
    const indicator = ctx.params.indicator as string;
    const changes = parse(bodySchemas.ApiChanges, body(ctx));
    const api = await apis.update(indicator, changes);
    catalog.forgetApis();
    ctx.body = api;
  });
  router.delete('/apis/:indicator', async (ctx) => {
    const indicator = ctx.params.indicator as string;
    await apis.remove(indicator);
    catalog.forgetApis();
    ctx.status = 204;
  });

  // Audit
  router.get('/audit', async (ctx) => {
    const query = parse(auditQuery, ctx.query);
    let accountId = query.user;
    if (accountId?.includes('@')) accountId = (await users.findByEmail(accountId))?.id ?? '00000000-0000-0000-0000-000000000000';
    const events = await queryAuditEvents(db, {
      type: query.type,
      accountId,
      clientId: query.client,
      since: query.since ? new Date(query.since) : undefined,
      until: query.until ? new Date(query.until) : undefined,
      limit: query.limit,
      before: query.before,
    });
    ctx.body = { events, next: events.length === query.limit ? (events.at(-1)?.id ?? null) : null };
  });

  const authenticated = chain([
    auditRefusals(deps.audit),
    requireAdminToken({ issuer: config.issuer, signingKeys: () => keyRing.signingKeys, catalog }),
    auditedAsCaller,
    readJson,
    router.routes() as Middleware,
    router.allowedMethods() as Middleware,
  ]);
  const handle = chain([
    errorResponses(logger),
    async (ctx: Context, next: Next) => {
      ctx.set('Cache-Control', 'no-store');
      // No id, indicator or query value holds a NUL: refused by name before it reaches a route or the store.
      if (/%00/i.test(ctx.url)) ctx.throw(400, UNSTORABLE_TEXT_DESCRIPTION);
      if (ctx.path === `${ADMIN_API_PATH}/openapi.json` && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        ctx.set('Cache-Control', 'public, max-age=300');
        ctx.body = document;
        return;
      }
      return next();
    },
    authenticated as Middleware,
  ]);
  const isAdminPath = (path: string) => path === ADMIN_API_PATH || path.startsWith(`${ADMIN_API_PATH}/`);
  return (ctx, next) => (isAdminPath(ctx.path) ? handle(ctx, async () => {}) : next());
}
