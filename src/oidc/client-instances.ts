/**
 * oidc-provider looks the client up on every request that names one (introspection twice: the caller, then the
 * token's client). For a client served by an adapter it then builds the metadata, hashes its JSON with SHA-256
 * and looks the hash up in a cache of built `Client`s that holds 100 of them; past 100 clients in use, a
 * lookup builds and validates a new `Client` from scratch.
 *
 * Here each catalog record (src/oidc/catalog.ts) keeps the `Client` built from it, for as long as the catalog
 * keeps the record: a lookup is the catalog's, and a `Client` is built once per record, whatever the number
 * of clients. A changed or disabled client is a new record or none, so it is never served from an old `Client`.
 */
import type Provider from 'oidc-provider';
import type { Client } from 'oidc-provider';
import type { ClientRecord } from '../clients/clients.js';
import type { Catalog } from './catalog.js';

export function reuseClientInstances(provider: Provider, catalog: Catalog): void {
  const builtFrom = new WeakMap<ClientRecord, Client>();
  const findAndBuild = provider.Client.find.bind(provider.Client);
  provider.Client.find = async (id: string) => {
    if (typeof id !== 'string' || id.length === 0) return undefined;
    const record = await catalog.client(id);
    if (!record) return undefined;
    let client = builtFrom.get(record);
    if (!client) {
      client = await findAndBuild(id);
      if (client) builtFrom.set(record, client);
    }
    return client;
  };
}
