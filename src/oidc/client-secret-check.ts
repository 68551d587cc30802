/**
 * Client secrets are stored only as HMACs (src/clients/secrets.ts), so oidc-provider's plain comparison is
 * replaced by ours: the presented secret is hashed under each known pepper and compared in constant time
 * against the client's unexpired hashes (two during a rollover). A client locked for too many failures is
 * refused before any comparison.
 */
import type Provider from 'oidc-provider';
import type { ClientRepository } from '../clients/clients.js';
import { assertClientNotLocked } from '../security/client-auth-limits.js';
import type { SecurityLimits } from '../security/limits.js';
import type { Catalog } from './catalog.js';

export function installClientSecretCheck(provider: Provider, catalog: Catalog, clients: ClientRepository, limits: SecurityLimits): void {
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(presented: string) {
    await assertClientNotLocked(limits, this.clientId);
    const record = await catalog.client(this.clientId);
    return record !== undefined && clients.verifySecret(record, presented);
  };
}
