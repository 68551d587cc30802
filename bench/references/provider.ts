/**
 * Raw oidc-provider: its default in-memory adapter, one static confidential client, client credentials issuing
 * RS256 JWT access tokens for one resource server — what our cc→JWT path does, without our stores and hooks.
 * Env: PORT, WORKERS.
 */
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import { envNumber, runCluster } from './cluster.js';
import { REFERENCE_CLIENT } from './constants.js';

const API = 'https://api.bench.test';

runCluster(envNumber('WORKERS', 1), async () => {
  const port = envNumber('PORT', 3100);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: REFERENCE_CLIENT.id,
        client_secret: REFERENCE_CLIENT.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'reference', alg: 'RS256', use: 'sig' }] },
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: 'read write',
          audience: API,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt' as const,
          jwt: { sign: { alg: 'RS256' as const } },
        }),
      },
    },
  });
  provider.listen(port, '127.0.0.1');
});
