/**
 * In-process cache of client and API records. oidc-provider looks the client up on every request and our
 * resource-server hook runs on every token, so both are served from memory for a short TTL
 * (CLIENT_CACHE_TTL_MS). A change made through this process is seen at once (`forget`); a change made elsewhere
 * (another instance, the CLI) within one TTL. Entries past their TTL are dropped every TTL, not only when asked
 * for again: a record keeps its built oidc-provider `Client` (./client-instances.ts), and a worker that served a
 * thousand clients once would otherwise hold them all, 10 MB or so, until the LRU's 10,000 pushed them out.
 */
import { LRUCache } from 'lru-cache';
import type { ApiRecord, ApiRepository } from '../apis/apis.js';
import type { ClientRecord, ClientRepository } from '../clients/clients.js';

const MISSING = Symbol('missing');

/** Clients named by a URL whose document says what they are (src/client-registration/metadata-documents.ts). */
export interface DocumentedClients {
  names(clientId: string): boolean;
  client(clientId: string): Promise<ClientRecord | undefined>;
}
type Cached<T> = T | typeof MISSING;

/** PostgreSQL text cannot hold a NUL, so no client id or indicator has one; asking would fail the query. */
const holdsNul = (value: string) => value.includes('\u0000');

export class Catalog {
  readonly #clients: LRUCache<string, Cached<ClientRecord>>;
  readonly #apis: LRUCache<string, Cached<ApiRecord>>;
  readonly #grantUse = new Map<string, { value: boolean; until: number }>();
  readonly #ttl: number;
  /** Clients that are part of the server (the account page's: src/clients/account-console.ts), not rows. */
  readonly #builtIn: ReadonlyMap<string, ClientRecord>;
  readonly #purging: NodeJS.Timeout;

  constructor(
    readonly clientRepository: ClientRepository,
    readonly apiRepository: ApiRepository,
    ttlMs: number,
    builtInClients: readonly ClientRecord[] = [],
    documentedClients?: DocumentedClients,
  ) {
    this.#builtIn = new Map(builtInClients.map((client) => [client.clientId, client]));
    const ttl = Math.max(ttlMs, 1);
    this.#ttl = ttlMs;
    this.#clients = new LRUCache({
      max: 10_000,
      ttl,
      // An entry dropped while its lookup is in flight (forgotten after a change, or swept as stale when the lookup
      // is slower than the TTL) would otherwise fail that lookup, and the request it serves, with "deleted". The
      // lookup answers what it read, and stores nothing: the next one reads again.
      ignoreFetchAbort: true,
      // A URL is never a registered client's id (src/clients/clients.ts): its document is asked, not the table.
      fetchMethod: async (clientId) =>
        (documentedClients?.names(clientId) ? await documentedClients.client(clientId) : await clientRepository.find(clientId)) ?? MISSING,
    });
    this.#apis = new LRUCache({
      max: 1_000,
      ttl,
      ignoreFetchAbort: true,
      fetchMethod: async (key) =>
        (await (key === DEFAULT_API ? apiRepository.findDefault() : apiRepository.findByIndicator(key))) ?? MISSING,
    });
    // One sweep a TTL (at least a second) rather than a timer per entry, which lru-cache's ttlAutopurge would set.
    this.#purging = setInterval(() => {
      this.#clients.purgeStale();
      this.#apis.purgeStale();
    }, Math.max(ttl, 1000)).unref();
  }

  close(): void {
    clearInterval(this.#purging);
  }

  /** The client, or undefined when it does not exist or is disabled. */
  async client(clientId: string): Promise<ClientRecord | undefined> {
    if (holdsNul(clientId)) return undefined;
    const builtIn = this.#builtIn.get(clientId);
    if (builtIn) return builtIn;
    // A fresh entry is read directly: the fetch machinery (in-flight sharing, stale handling) is for a miss.
    const record = this.#clients.get(clientId) ?? (await this.#clients.fetch(clientId));
    return record === MISSING || !record || record.disabledAt ? undefined : record;
  }

  async api(indicator: string): Promise<ApiRecord | undefined> {
    if (holdsNul(indicator)) return undefined;
    const record = this.#apis.get(indicator) ?? (await this.#apis.fetch(indicator));
    return record === MISSING ? undefined : record;
  }

  async defaultApi(): Promise<ApiRecord | undefined> {
    return this.api(DEFAULT_API);
  }

  /**
   * Whether some enabled client may use `grantType` (cached like the records). Discovery asks this, and discovery
   * must keep answering while PostgreSQL is down: then the last answer stands until the database is back. Only a
   * process that never got one fails.
   */
  async anyClientWithGrant(grantType: string): Promise<boolean> {
    const cached = this.#grantUse.get(grantType);
    if (cached && cached.until > Date.now()) return cached.value;
    let value: boolean;
    try {
      value = await this.clientRepository.anyWithGrantType(grantType);
    } catch (error) {
      if (cached) return cached.value;
      throw error;
    }
    this.#grantUse.set(grantType, { value, until: Date.now() + this.#ttl });
    return value;
  }

  /** After a change to a client through this process: its record, and which grants some client may use. */
  forgetClient(clientId: string): void {
    this.#clients.delete(clientId);
    this.#grantUse.clear();
  }

  forgetApis(): void {
    this.#apis.clear();
  }
}

/** Cache key of the default API; cannot collide with an indicator, which is an absolute URI. */
const DEFAULT_API = ' default';
