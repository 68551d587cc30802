/**
 * Client secrets are stored only as HMACs (src/clients/secrets.ts), so oidc-provider's plain comparison is
 * replaced by ours: the presented secret is hashed under each known pepper and compared in constant time
 * against the client's unexpired hashes (two during a rollover).
 */
import type Provider from 'oidc-provider';
import type { ClientRepository } from '../clients/clients.js';
import type { Catalog } from './catalog.js';

export function installClientSecretCheck(provider: Provider, catalog: Catalog, clients: ClientRepository): void {
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(presented: string) {
    const record = await catalog.client(this.clientId);
    return record !== undefined && clients.verifySecret(record, presented);
  };
}
