/** The raw oidc-provider reference's client, shared with the orchestrator (which must not import provider.ts). */
export const REFERENCE_CLIENT = { id: 'reference-client', secret: 'reference-secret-0123456789abcdefghijklmnop' };
