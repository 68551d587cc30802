/**
 * Builds the whole server from a config: storage, keys, the oidc-provider instance, our pages, and the outer
 * Koa app that mounts them. `main.ts` listens; tests call `createServer` directly.
 */
import { createServer as createHttpServer, type Server as HttpServer, type RequestListener } from 'node:http';
import Koa from 'koa';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from './config.js';
import { ADMIN_ACTOR, adminApiIndicator, createAdminApi } from './admin/index.js';
import { auditProviderEvents, auditRevocations } from './audit/provider-events.js';
import type { AuditSink } from './audit/audit-log.js';
import { queryAuditEvents } from './audit/audit-query.js';
import { REGISTRATION_ACTOR, createClientRegistrationRoutes } from './client-registration/routes.js';
import { RegistrationUse, removeUnusedRegistrations } from './client-registration/unused-registrations.js';
import { RevocationLists } from './oidc/revocation-lists.js';
import { ClientRepository, TOKEN_EXCHANGE_GRANT, clientRepositoryOptions } from './clients/clients.js';
import { appDescriptions } from './client-registration/app-descriptions.js';
import { answerClientErrors } from './http/client-errors.js';
import { ProviderDocumentCache } from './http/document-cache.js';
import { answerDocumentsEarly } from './http/early-documents.js';
import { healthRoutes } from './http/health.js';
import { requireHttps } from './http/https-only.js';
import { rejectMalformedPaths } from './http/malformed-paths.js';
import { requestContext } from './http/request-context.js';
import { securityHeaders, securityHeaderWriter } from './http/security-headers.js';
import { PageError } from './interaction/errors.js';
import type { Views } from './interaction/views.js';
import { createAccountPage, createBrowserErrorPages, createInteractionRoutes, createProviderPages, createViews } from './interaction/index.js';
import { SessionDirectory } from './accounts/sessions.js';
import { KeyRing } from './keys/key-ring.js';
import { MailOutbox } from './mail/outbox.js';
import { createMailTransport, logMail } from './mail/transport.js';
import { httpMetrics, metricsRoute } from './metrics/http-metrics.js';
import { publicMetricsAccess } from './metrics/metrics-access.js';
import { Metrics } from './metrics/metrics.js';
import { instrumentAdapter } from './metrics/store-metrics.js';
import { rotateIfDue } from './keys/rotation.js';
import { accessLoggerOf, type Logger } from './logger.js';
import { BackchannelLogoutNotifier, LogoutTokenDeliveries, deliverInBackground } from './oidc/backchannel-logout.js';
import { ClientAdapter } from './oidc/client-adapter.js';
import { offeredOidcScopes } from './oidc/scopes.js';
import { ProviderSlot } from './oidc/provider-slot.js';
import { installClientSecretCheck } from './oidc/client-secret-check.js';
import { reuseClientInstances } from './oidc/client-instances.js';
import { rfc6749ErrorCodes } from './oidc/error-codes.js';
import { noCachePragma } from './oidc/no-cache-pragma.js';
import { omitEmptyDiscoveryLists } from './oidc/discovery-empty-lists.js';
import { advertiseOnlyWhenUsed } from './oidc/grant-advertising.js';
import { jwtAccessTokenVerifier } from './oidc/jwt-access-tokens.js';
import { PASSWORD_GRANT, registerPasswordGrant } from './oidc/password-grant.js';
import { registerTokenExchangeGrant } from './oidc/token-exchange.js';
import { createProvider } from './oidc/provider.js';
import { createAdapterFactory } from './store/adapters.js';
import { readGrantWithUser } from './store/grant-read-ahead.js';
import { clientAuthLimits } from './security/client-auth-limits.js';
import { devicePollPacing } from './security/device-poll-pace.js';
import { LockAdministration } from './security/lock-administration.js';
import { userCodeGuard } from './security/user-code-guard.js';
import { schedulePruning } from './store/prune.js';
import { WebhookDelivery, scheduleWebhooks } from './webhooks/webhook-delivery.js';
import { answerOutage, logRefusedForOutage } from './store/outages.js';
import { inRequestScope } from './store/request-scope.js';
import { type Services, closeServices, openServices } from './services.js';
import { LinkedIdentities } from './federation/linked-identities.js';
import { backFromProviderSignOut, signOutAtProvider } from './federation/logout.js';
import { UpstreamProviders } from './federation/upstream.js';

export type { Services } from './services.js';

export interface AuthzServer {
  app: Koa;
  /** What the HTTP server calls for each request: cached discovery and JWKS answers first, then Koa. */
  handleRequest: RequestListener;
  /** The Provider serving right now (a new one is built when the signing keys change). */
  readonly provider: Provider;
  services: Services;
  keyRing: KeyRing;
  metrics: Metrics;
  /** Marks the process as shutting down: /readyz answers 503 from now on. */
  beginShutdown(): void;
  /** Re-reads keys/ now; resolves true when a new Provider took over. */
  reloadKeys(): Promise<boolean>;
  /** Stops background jobs and closes the database and Redis connections. */
  close(): Promise<void>;
}

export interface ServerOptions {
  /** The clock that decides key states (tests move it forward). */
  now?: () => Date;
}

export async function createServer(config: Config, logger: Logger, options: ServerOptions = {}): Promise<AuthzServer> {
  if (config.authorizationPost && !config.production) {
    logger.warn('AUTHORIZATION_POST: browsers keep a SameSite=None session cookie only when it is Secure, as it is in production (https)');
  }
  // Before the stores are opened: a CRL file that cannot be used stops the start with nothing to close.
  const crlFile = config.mutualTls?.crlFile;
  const revocations = crlFile ? await RevocationLists.open(crlFile, config.mutualTls?.trustedAuthorities ?? [], logger) : undefined;
  const services = await openServices(config, { logger });
  // Off the request path: the first unknown email must take as long as any other (src/accounts/passwords.ts).
  const decoyReady = services.users.passwords.prepareDecoy();
  const keyRing = await KeyRing.open({
    keysDir: config.keys.dir,
    passphrase: config.keys.passphrase,
    retireAfterSeconds: config.keys.retireAfterSeconds,
    generateIfEmpty: !config.production,
    staticCookieSecrets: config.cookieSecrets,
    now: options.now,
  });
  await decoyReady;
  const metrics = new Metrics({ keyStatuses: () => keyRing.statuses });
  const { tokenCache } = services;
  if (tokenCache) metrics.observeTokenCache(() => tokenCache.stats);
  const { breachLookups } = services.users.passwordPolicy;
  if (breachLookups) metrics.observeBreachLookups(() => breachLookups);
  metrics.observeAuditLog(() => services.audit.stats);
  // Protocol outcomes are counted from what is audited (src/metrics/metrics.ts).
  const audit = metrics.countingAuditSink(services.audit);
  const logoutDeliveries = new LogoutTokenDeliveries(audit, logger);
  const views = createViews(config);
  // Apps' use is recorded wherever apps may register themselves, or are removed when unused: their TTL counts from it.
  const registrationUse =
    config.clientRegistration !== 'off' || config.clientRegistrationUnusedTtlSeconds > 0 ? new RegistrationUse(services.db, logger) : undefined;
  const buildProvider = providerFactory(config, logger, services, { audit, metrics, logoutDeliveries, views, registrationUse, revocations });
  const slot = new ProviderSlot(buildProvider(keyRing));
  let shuttingDown = false;

  const app = new Koa();
  // Both must be set on the outer app: the mounted provider runs on our ctx (design §2).
  app.proxy = config.proxy;
  // Behind one TLS-terminating proxy, the client IP is the address that proxy appended last; earlier
  // X-Forwarded-For entries are whatever the client sent, and must not key brute-force limits or the audit log.
  app.maxIpsCount = 1;
  app.keys = keyRing.cookieSecrets;
  app.silent = true;
  app.use(httpMetrics(metrics));
  app.use(requestContext(logger));
  const securityHeaderSet = await securityHeaderWriter({ production: config.production });
  app.use(securityHeaders(securityHeaderSet));
  app.use(createBrowserErrorPages({ views, logger }));
  // Discovery and JWKS are the most requested documents (every RP and API polls them); their exact paths need
  // none of the checks below, so the cache answers them first (and, once cached, before Koa: handleRequest).
  const documents = new ProviderDocumentCache(() => slot.current, config.proxy, Math.min(5000, config.clientCacheTtlMs));
  app.use(documents.middleware());
  app.use(rejectMalformedPaths());
  app.use(
    healthRoutes({
      db: services.db,
      redis: services.redis,
      hasSigningKeys: () => keyRing.signingKeys.length > 0,
      shuttingDown: () => shuttingDown,
    }),
  );
  if (!config.metricsPort) {
    if (publicMetricsAccess(config) === 'closed') {
      logger.info('/metrics is not served on PORT in production: set METRICS_PORT (a private port) or METRICS_TOKEN (a bearer token for the scraper)');
    } else {
      app.use(metricsRoute(metrics, config.metricsToken));
    }
  }
  if (config.production) app.use(requireHttps({ proxy: config.proxy, logger }));
  const sessionEndListener = new BackchannelLogoutNotifier({
    catalog: services.catalog,
    provider: () => slot.current,
    deliveries: logoutDeliveries,
    actor: ADMIN_ACTOR,
    logger,
  });
  const mailTransport = createMailTransport(config.mail, logMail(logger));
  if (!mailTransport) logger.info('SMTP_URL is not set: no mail is sent, so password reset and email confirmation by mail are off');
  if (!mailTransport && config.registration.mode === 'open') {
    logger.warn('REGISTRATION=open without SMTP_URL: new accounts cannot confirm their address or reset a forgotten password');
  }
  const outbox = mailTransport && new MailOutbox(mailTransport, audit, logger);
  app.use(await createAdminApi({ config, services, keyRing, audit, logger, sessionEndListener, mailTransport }));
  if (config.clientRegistration !== 'off') {
    app.use(
      createClientRegistrationRoutes({
        config,
        clients: new ClientRepository(services.db, clientRepositoryOptions(config, audit, REGISTRATION_ACTOR)),
        tokens: services.registrationTokens,
        catalog: services.catalog,
        limits: services.limits,
        audit,
      }),
    );
  }
  // Links made or removed at a sign-in or on the account page are the person's own doing: audited `by: self`.
  const linkedIdentities = new LinkedIdentities(services.db, { audit, actor: 'self' });
  const upstream = new UpstreamProviders(config.identityProviders, config.issuer, logger);
  app.use(
    createInteractionRoutes({
      provider: slot.proxy,
      users: services.users,
      twoFactor: services.twoFactor,
      catalog: services.catalog,
      audit,
      limits: services.limits,
      config,
      logger,
      emailLinks: services.emailLinks,
      outbox,
      passkeys: services.passkeys,
      linkedIdentities,
      upstream,
      views,
      appDescriptions: appDescriptions(services.catalog, services.registrationTokens, services.documentedClients),
    }),
  );
  // The account page's changes are the user's own: audited `by: self`, and the sessions it ends are told to their apps.
  const selfSessions = new SessionDirectory(services.sessions.store, { audit, actor: 'self', listener: sessionEndListener });
  app.use(
    createAccountPage({
      provider: slot.proxy,
      users: services.users.actingAs({ audit, actor: 'self', sessions: selfSessions }),
      sessions: selfSessions,
      emailLinks: services.emailLinks,
      outbox,
      passkeys: services.passkeys,
      linkedIdentities,
      upstream,
      locks: new LockAdministration(services.limits, { audit, actor: 'self' }),
      accountActivity: async (accountId, limit, type) => {
        await audit.flush?.(); // what was just done belongs in the file, and the sign-in that opened the page in its list
        return queryAuditEvents(services.db, { accountId, type, limit });
      },
      twoFactor: services.twoFactor,
      catalog: services.catalog,
      audit,
      limits: services.limits,
      config,
      logger,
      views,
    }),
  );
  // Signing out here of every app signs out at the provider a person signed in through, where it says so.
  app.use(backFromProviderSignOut(config.production, (ctx) => views.render(ctx, 'logged-out.njk', {})));
  app.use(signOutAtProvider(upstream, config.production));
  // A request scope lets one storage call hand on to the next (fewer round trips: src/store/request-scope.ts).
  app.use((ctx, next) => inRequestScope(() => slot.mounted(ctx, next)));
  app.use(async (ctx) => {
    // A browser gets a page (errorPagesForBrowsers renders what is thrown); API clients keep the JSON.
    if (ctx.accepts('json', 'html') === 'html') throw new PageError(404, 'There is no page at this address. Go back to the application and start again.');
    ctx.status = 404;
    ctx.body = { error: 'not_found', error_description: `no route for ${ctx.method} ${ctx.path}` };
  });

  const keyWatch = watchKeys(config, logger, keyRing, revocations, () => {
    app.keys = keyRing.cookieSecrets;
    slot.swap(buildProvider(keyRing));
  });
  const pruning = schedulePruning(services.db, config.pruneIntervalSeconds, logger, {
    auditRetentionSeconds: config.auditRetentionSeconds,
    removeUnused: unusedRegistrationRemoval(config, services, audit),
  });
  const webhooks = config.webhook && new WebhookDelivery(services.db, config.webhook, { logger });
  if (webhooks) metrics.observeWebhooks(() => webhooks.counts);
  const webhookSchedule = webhooks && scheduleWebhooks(webhooks, logger);
  const handleRequest = answerDocumentsEarly(
    { cache: documents, securityHeaders: securityHeaderSet, accessLog: accessLoggerOf(logger), logger, metrics },
    app.callback(),
  );
  return {
    app,
    handleRequest,
    get provider() {
      return slot.current;
    },
    services,
    keyRing,
    metrics,
    reloadKeys: keyWatch.reload,
    beginShutdown() {
      shuttingDown = true;
    },
    async close() {
      keyWatch.stop();
      await pruning.stop();
      await webhookSchedule?.stop();
      // Logout tokens and mail still on their way get their outcome audited before the audit log closes.
      await Promise.all([logoutDeliveries.settled(), outbox?.settled()]);
      outbox?.close();
      await closeServices(services);
    },
  };
}

/** With CLIENT_REGISTRATION_UNUSED_TTL, what the pruning job runs to remove apps that registered themselves and went unused. */
function unusedRegistrationRemoval(config: Config, services: Services, audit: AuditSink) {
  const unusedSeconds = config.clientRegistrationUnusedTtlSeconds;
  if (unusedSeconds === 0) return undefined;
  const clients = new ClientRepository(services.db, clientRepositoryOptions(config, audit, 'pruning'));
  return async () => {
    const ids = await removeUnusedRegistrations(services.db, clients, unusedSeconds);
    for (const id of ids) services.catalog.forgetClient(id);
    return { what: 'apps that registered themselves and got no token for CLIENT_REGISTRATION_UNUSED_TTL', ids };
  };
}

/** What each provider built shares with the rest of the app: where it reports, and the pages it renders. */
interface ProviderSurroundings {
  audit: AuditSink;
  metrics: Metrics;
  logoutDeliveries: LogoutTokenDeliveries;
  views: Views;
  registrationUse: RegistrationUse | undefined;
  revocations: RevocationLists | undefined;
}

function providerFactory(config: Config, logger: Logger, services: Services, surroundings: ProviderSurroundings) {
  const { db, redis, users, clients, catalog, limits } = services;
  const { audit, metrics, logoutDeliveries, views, registrationUse, revocations } = surroundings;
  const pages = createProviderPages({ views, logger });
  const adapter = createAdapterFactory({
    db,
    redis,
    redisKeyPrefix: config.redis?.keyPrefix,
    tokenCache: services.tokenCache,
    clientAdapter: () => new ClientAdapter(catalog, offeredOidcScopes(config.claimScopes)),
    instrument: (adapter, store) => instrumentAdapter(adapter, store, metrics),
    refreshGrace: {
      graceSeconds: config.ttl.refreshReuseGrace,
      onGraceReuse: (token) =>
        audit.record({
          type: 'refresh_reuse_in_grace',
          outcome: 'success',
          accountId: token.accountId,
          clientId: token.clientId,
          detail: { grantId: token.grantId, graceSeconds: config.ttl.refreshReuseGrace },
        }),
    },
  });
  return (keyRing: KeyRing): Provider => {
    const provider = createProvider({
      config,
      adapter,
      catalog,
      users,
      clients,
      signingKeys: keyRing.signingKeys,
      cookieSecrets: keyRing.cookieSecrets,
      pages,
      readGrantWithUser: (grantId, userId) => readGrantWithUser(db, grantId, userId),
      pairwiseSalt: services.pairwiseSalt,
      dpopNonceSecret: services.dpopNonceSecret,
      groups: services.groups,
      revocations,
    });
    reuseClientInstances(provider, catalog);
    installClientSecretCheck(provider, catalog, clients, limits);
    deliverInBackground(provider, logoutDeliveries);
    provider.use(clientAuthLimits(limits, audit));
    provider.use(userCodeGuard(limits, audit, pages.deviceFlow.tooManyGuesses));
    provider.use(devicePollPacing(limits.devicePolling, logger));
    provider.use(auditRevocations(audit) as Koa.Middleware);
    provider.use(jwksCacheControl(config.keys.jwksMaxAgeSeconds));
    auditProviderEvents(provider, audit);
    if (registrationUse) {
      provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
        if (ctx.oidc.client) registrationUse.note(ctx.oidc.client.clientId);
      });
    }
    registerPasswordGrant(provider, {
      users,
      twoFactor: services.twoFactor,
      catalog,
      limits,
      audit,
      emailConfirmationRequired: config.mail.confirmationRequired,
      userClaims: config.userClaims,
      groups: services.groups,
      termsVersion: config.terms?.version,
      passwordMaxAgeSeconds: config.passwords.maxAgeSeconds,
    });
    registerTokenExchangeGrant(provider, {
      catalog,
      users,
      audit,
      verifyJwtAccessToken: jwtAccessTokenVerifier({ issuer: config.issuer, signingKeys: () => keyRing.signingKeys }),
      protectedIndicators: [adminApiIndicator(config.issuer)],
      signingAlgs: () => keyRing.signingKeys.map((key) => key.alg),
    });
    provider.use(advertiseOnlyWhenUsed(catalog, [PASSWORD_GRANT, TOKEN_EXCHANGE_GRANT]) as Koa.Middleware);
    provider.use(omitEmptyDiscoveryLists as Koa.Middleware);
    provider.use(rfc6749ErrorCodes as Koa.Middleware);
    provider.use(noCachePragma);
    provider.on('server_error', (ctx, error) => {
      const requestId = ctx.state?.requestId;
      if (answerOutage(ctx, error)) logRefusedForOutage(logger, requestId, error);
      else logger.error({ err: error, requestId }, 'provider error');
    });
    return provider;
  };
}

/** Relying parties may cache JWKS for a quarter of the time a new key is published before it signs. */
function jwksCacheControl(maxAgeSeconds: number): Koa.Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'jwks' && ctx.status === 200) ctx.set('Cache-Control', `public, max-age=${maxAgeSeconds}`);
  };
}

/**
 * Re-reads keys/ periodically and on SIGHUP (creating the next key first when scheduled rotation is due); when what is published or which key signs changed, `onChange`
 * builds a fresh Provider. A bad key file is logged and the keys in force are kept. The mutual TLS revocation
 * lists (MTLS_CRL_FILE) are read again on the same beat when their file changed.
 */
function watchKeys(config: Config, logger: Logger, keyRing: KeyRing, revocations: RevocationLists | undefined, onChange: () => void) {
  const reload = async (): Promise<boolean> => {
    await revocations?.recheck(); // logs its own problems
    try {
      for (const rotation of await rotateIfDue(config, keyRing)) {
        if (rotation.created) logger.info({ kid: rotation.kid, alg: rotation.alg, activatesAt: rotation.activatesAt }, 'scheduled rotation: created the next key');
      }
      if (!(await keyRing.refresh())) return false;
      onChange();
      logger.info({ keys: keyRing.statuses.map(({ kid, state }) => ({ kid, state })) }, 'signing keys changed');
      return true;
    } catch (error) {
      logger.error({ err: error }, 'keys/ could not be reloaded; still serving with the keys in force');
      return false;
    }
  };
  const timer = setInterval(reload, config.keys.rescanIntervalSeconds * 1000).unref();
  const onHangup = () => void reload();
  process.on('SIGHUP', onHangup);
  return {
    reload,
    stop() {
      clearInterval(timer);
      process.off('SIGHUP', onHangup);
    },
  };
}

/** Starts listening; resolves once the port is bound. */
export function listen(handleRequest: RequestListener, port: number, host: string): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    const server = createHttpServer(handleRequest).listen(port, host);
    answerClientErrors(server);
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}
