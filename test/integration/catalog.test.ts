/**
 * The in-process catalog of clients and APIs (src/oidc/catalog.ts), on a real database: a lookup in flight is
 * answered even when its entry is dropped meanwhile, instead of failing the request it serves with lru-cache's
 * "deleted". A change made through this process (`forgetClient`, `forgetApis`) drops it here, at a known moment;
 * the sweep of stale entries drops it the same way (lru-cache's delete), which is what failed a token request of
 * test/e2e/token-lifetimes.test.ts under load, when a lookup outlasted the test server's TTL and met the sweep.
 */
import { ApiRepository } from '../../src/apis/apis.js';
import { ClientRepository } from '../../src/clients/clients.js';
import { Catalog } from '../../src/oidc/catalog.js';
import { type TestDatabase, createTestDatabase, sqlKinds } from '../support/environment.js';

const PEPPER = { kid: 'p1', secret: 'pepper-one-0123456789-0123456789-0123456789' };

describe.each(sqlKinds)('the catalog on %s', (kind) => {
  let store: TestDatabase;
  let clients: ClientRepository;
  let apis: ApiRepository;

  beforeAll(async () => {
    store = await createTestDatabase(kind);
    clients = new ClientRepository(store.db, { peppers: [PEPPER] });
    apis = new ApiRepository(store.db, { defaultAccessTokenTtl: 600 });
  });
  afterAll(() => store.drop());

  test('a lookup in flight when its entry is forgotten still answers, and the change is read by the next lookup', async () => {
    const catalog = new Catalog(clients, apis, 10_000);
    try {
      const { client } = await clients.create({ type: 'service', name: 'Before' });
      const inFlight = catalog.client(client.clientId);
      catalog.forgetClient(client.clientId);
      expect((await inFlight)?.name).toBe('Before');

      await clients.update(client.clientId, { name: 'After' });
      catalog.forgetClient(client.clientId);
      expect((await catalog.client(client.clientId))?.name).toBe('After');

      const indicator = `https://inflight-${kind}.example.test`;
      await apis.create({ indicator, name: 'Reports', scopes: ['reports:read'] });
      const apiInFlight = catalog.api(indicator);
      catalog.forgetApis();
      expect((await apiInFlight)?.name).toBe('Reports');
    } finally {
      catalog.close();
    }
  });
});
