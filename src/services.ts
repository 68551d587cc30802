/**
 * The stores and domain repositories one process works with: the database (migrated), Redis when configured,
 * users, clients, APIs and the in-process catalog cache. The server and the CLI both open them here.
 */
import type { Redis } from 'ioredis';
import { UserRepository } from './accounts/users.js';
import { ApiRepository } from './apis/apis.js';
import { ClientRepository } from './clients/clients.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Catalog } from './oidc/catalog.js';
import { type Database, closeDatabase, migrate, openDatabase } from './store/database.js';
import { openRedis } from './store/redis.js';
import { ensureDevelopmentSecrets } from './secrets.js';

export interface Services {
  db: Database;
  redis?: Redis;
  users: UserRepository;
  clients: ClientRepository;
  apis: ApiRepository;
  catalog: Catalog;
}

export async function openServices(config: Config, logger?: Logger): Promise<Services> {
  if (!config.production) await ensureDevelopmentSecrets(config);
  const db = await openDatabase(config.database);
  await migrate(db);
  const redis = config.redis ? openRedis(config.redis.url, logger) : undefined;
  const users = new UserRepository(db, { bcryptCost: config.bcryptCost });
  const clients = new ClientRepository(db, { peppers: config.clientSecretPeppers });
  const apis = new ApiRepository(db, { defaultAccessTokenTtl: config.ttl.apiAccessToken });
  const catalog = new Catalog(clients, apis, config.clientCacheTtlMs);
  return { db, redis, users, clients, apis, catalog };
}

export async function closeServices(services: Services): Promise<void> {
  services.redis?.disconnect();
  await closeDatabase(services.db);
}
