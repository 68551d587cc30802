/**
 * The stores and domain repositories one process works with: the database (migrated), Redis when configured,
 * users, clients, APIs and the in-process catalog cache. The server and the CLI both open them here.
 */
import { EmailLinks } from './accounts/email-links.js';
import { Passkeys } from './accounts/passkeys.js';
import { LinkedIdentities } from './federation/linked-identities.js';
import { GroupRepository } from './accounts/groups.js';
import { TwoFactor } from './accounts/two-factor.js';
import { UserRepository } from './accounts/users.js';
import { passwordPolicyOf } from './accounts/password-policy.js';
import { adminApiIndicator } from './admin/auth.js';
import { ApiRepository, apiRepositoryOptions } from './apis/apis.js';
import { SessionDirectory, type SessionEndListener } from './accounts/sessions.js';
import { AuditLog } from './audit/audit-log.js';
import { accountConsoleClient } from './clients/account-console.js';
import { ClientRepository, clientRepositoryOptions } from './clients/clients.js';
import { ClientMetadataDocuments } from './client-registration/metadata-documents.js';
import { RegistrationTokens } from './client-registration/tokens.js';
import type { Config } from './config.js';
import { type Logger, createLogger } from './logger.js';
import { useMailTemplates } from './mail/messages.js';
import { Catalog } from './oidc/catalog.js';
import { type Database, closeDatabase, migrate, openDatabase } from './store/database.js';
import { sessionStore } from './store/adapters.js';
import { RedisBroadcast } from './store/broadcast.js';
import { openRedis, type RedisClient } from './store/redis.js';
import { TokenRecordCache } from './store/token-record-cache.js';
import { LockAdministration } from './security/lock-administration.js';
import { type SecurityLimits, createSecurityLimits } from './security/limits.js';
import { ensureDevelopmentSecrets } from './secrets.js';
import { readDpopNonceSecret } from './oidc/dpop-nonces.js';
import { readPairwiseSalt } from './oidc/pairwise-subjects.js';

export interface Services {
  db: Database;
  redis?: RedisClient;
  users: UserRepository;
  /** Two-step verification at sign-in (authenticator app codes, recovery codes). */
  twoFactor: TwoFactor;
  /** Single-use links sent by mail: password reset, email confirmation. */
  emailLinks: EmailLinks;
  /** Passkeys (WebAuthn credentials) users sign in with. */
  passkeys: Passkeys;
  /** Accounts at other identity providers linked to ours (src/federation/). */
  linkedIdentities: LinkedIdentities;
  clients: ClientRepository;
  /** Initial and registration access tokens of dynamic client registration (src/client-registration/). */
  registrationTokens: RegistrationTokens;
  /** Apps named by their metadata documents, when CLIENT_ID_METADATA_DOCUMENTS is on. */
  documentedClients?: ClientMetadataDocuments;
  apis: ApiRepository;
  catalog: Catalog;
  audit: AuditLog;
  limits: SecurityLimits;
  /** Seeing and lifting brute-force locks (CLI, admin API). */
  locks: LockAdministration;
  sessions: SessionDirectory;
  /** With Redis: access-token records kept in process, and their deletions announced to every instance. */
  tokenCache?: TokenRecordCache;
  /** The key of pairwise subject identifiers, made once with the database (src/oidc/pairwise-subjects.ts). */
  pairwiseSalt: string;
  /** Groups of users and the roles they give (src/accounts/groups.ts). */
  groups: GroupRepository;
  /** The key of DPoP nonces, made once with the database (src/oidc/dpop-nonces.ts). */
  dpopNonceSecret: Buffer;
}

export interface ServiceOptions {
  logger?: Logger;
  /** Who the administrative changes made through these services are attributed to in the audit log. */
  actor?: string;
  /** Told of the sessions ended through these services (back-channel logout: src/cli/logout-tokens.ts). */
  sessionEndListener?: SessionEndListener;
}

export async function openServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  const { logger, actor = 'server', sessionEndListener } = options;
  if (!config.production) await ensureDevelopmentSecrets(config);
  useMailTemplates(config.mail.templatesDir);
  const db = await openDatabase(config.database, logger);
  await migrate(db);
  const redis = config.redis ? openRedis(config.redis, logger) : undefined;
  const audit = new AuditLog(db, logger, { toLog: config.auditToLog });
  const sessions = new SessionDirectory(sessionStore({ db, redis, redisKeyPrefix: config.redis?.keyPrefix }), { audit, actor, listener: sessionEndListener });
  const users = new UserRepository(db, { bcryptCost: config.bcryptCost, audit, actor, sessions, passwordPolicy: passwordPolicyOf(config, logger), passwordHistory: config.passwords.history, passwordHistoryDays: config.passwords.historyDays });
  const groups = new GroupRepository(db, { audit, actor, cacheTtlMs: config.clientCacheTtlMs });
  await groups.load();
  groups.startRefreshing((error) => logger?.warn({ err: error }, 'could not read the groups again; keeping those in hand'));
  const twoFactor = new TwoFactor(db, { peppers: config.clientSecretPeppers, requiredRoles: config.totpRequiredRoles, rolesOf: (user) => groups.effectiveRoles(user) });
  const emailLinks = new EmailLinks(db, config.mail.linkTtlSeconds);
  const passkeys = new Passkeys(db, config.issuer, { audit, actor });
  const linkedIdentities = new LinkedIdentities(db, { audit, actor });
  const clients = new ClientRepository(db, clientRepositoryOptions(config, audit, actor));
  const apis = new ApiRepository(db, apiRepositoryOptions(config, audit, actor, [adminApiIndicator(config.issuer)]));
  const documentedClients = config.clientIdMetadataDocuments
    ? new ClientMetadataDocuments({ production: config.production, allowPrivateNetworks: config.allowPrivateNetworkCalls, logger: logger ?? createLogger('silent', config.production) })
    : undefined;
  const catalog = new Catalog(clients, apis, config.clientCacheTtlMs, [accountConsoleClient(config.issuer)], documentedClients);
  const limits = createSecurityLimits(config, { db, redis, redisKeyPrefix: config.redis?.keyPrefix });
  const locks = new LockAdministration(limits, { audit, actor });
  const tokenCache = redis && new TokenRecordCache(new RedisBroadcast(redis, `${config.redis?.keyPrefix ?? ''}tokens:deleted`), config.tokenCache);
  const pairwiseSalt = await readPairwiseSalt(db);
  const dpopNonceSecret = await readDpopNonceSecret(db);
  const registrationTokens = new RegistrationTokens(db, { audit, actor });
  return {
    db,
    redis,
    users,
    groups,
    twoFactor,
    emailLinks,
    passkeys,
    linkedIdentities,
    clients,
    registrationTokens,
    documentedClients,
    apis,
    catalog,
    audit,
    limits,
    locks,
    sessions,
    tokenCache,
    pairwiseSalt,
    dpopNonceSecret,
  };
}

/** Flushes the audit log, then closes Redis and the database. */
export async function closeServices(services: Services): Promise<void> {
  await services.audit.close();
  services.catalog.close();
  services.groups.close();
  services.limits.close();
  services.tokenCache?.close();
  services.redis?.disconnect();
  await closeDatabase(services.db);
}
