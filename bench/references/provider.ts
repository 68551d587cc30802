/**
 * Raw oidc-provider: its default in-memory adapter, one static confidential client, client credentials issuing
 * RS256 JWT access tokens for one resource server — what our cc→JWT path does, without our stores and hooks.
 * Also introspection of one opaque client-credentials token, saved by every worker under the id the orchestrator
 * chose (INTROSPECTED_TOKEN), so that whichever worker answers finds it, as our shared Redis lets ours.
 * Env: PORT, WORKERS, INTROSPECTED_TOKEN.
 */
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import { envNumber, runCluster } from './cluster.js';
import { REFERENCE_CLIENT } from './constants.js';

const API = 'https://api.bench.test';
const OPAQUE_API = 'https://opaque.bench.test';

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
    ttl: { ClientCredentials: 3600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // A client may introspect its own tokens (the default policy), as in the server's scenario.
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => ({
          scope: 'read write',
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: resource === OPAQUE_API ? ('opaque' as const) : ('jwt' as const),
          jwt: { sign: { alg: 'RS256' as const } },
        }),
      },
    },
  });
  const introspected = process.env.INTROSPECTED_TOKEN;
  if (introspected) {
    const client = await provider.Client.find(REFERENCE_CLIENT.id);
    const token = new provider.ClientCredentials({ client, scope: 'read', jti: introspected } as ConstructorParameters<typeof provider.ClientCredentials>[0]);
    token.resourceServer = new provider.ResourceServer(OPAQUE_API, { scope: 'read write', audience: OPAQUE_API, accessTokenFormat: 'opaque' });
    // Set when the provider generates the id, which it does not here.
    (token as unknown as { format: string }).format = 'opaque';
    await token.save();
  }
  provider.listen(port, '127.0.0.1');
});
