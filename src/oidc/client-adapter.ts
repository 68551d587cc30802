/**
 * oidc-provider's `Client` model, served read-only from our `clients` table (through the catalog cache).
 * Clients are managed by the CLI and the admin API, never by the provider, so every write method refuses.
 */
import type { Adapter, AdapterPayload, ClientMetadata } from 'oidc-provider';
import type { ClientRecord } from '../clients/clients.js';
import { FAPI_2_0, FAPI_PROFILE_METADATA } from '../clients/fapi.js';
import { encryptionMetadata } from '../clients/response-encryption.js';
import type { Catalog } from './catalog.js';
import { OIDC_SCOPES } from './scopes.js';

/**
 * Stands in for `client_secret`, which oidc-provider requires on confidential clients. The real check is
 * `compareClientSecret` against the hashes; symmetric uses of the secret (client_secret_jwt, HS*) are disabled,
 * so this value is never used as a key.
 */
export const HASHED_SECRET_PLACEHOLDER = 'hashed-secret-see-client_secrets-table';

/** `oidcScopes`: the OpenID Connect scopes the server offers (./scopes.ts), which a client's `scope` may name. */
export function toClientMetadata(record: ClientRecord, oidcScopes: readonly string[] = OIDC_SCOPES): ClientMetadata {
  const confidential = record.tokenEndpointAuthMethod !== 'none';
  return {
    ...record.metadata,
    client_id: record.clientId,
    client_name: record.name,
    client_secret: confidential ? HASHED_SECRET_PLACEHOLDER : undefined,
    redirect_uris: record.redirectUris,
    post_logout_redirect_uris: record.postLogoutRedirectUris,
    grant_types: record.grantTypes,
    response_types: record.grantTypes.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: record.tokenEndpointAuthMethod,
    scope: oidcScopesOf(record, oidcScopes),
    application_type: isNativeApp(record) ? 'native' : 'web',
    first_party: record.firstParty,
    backchannel_logout_uri: record.backchannelLogoutUri ?? undefined,
    backchannel_logout_session_required: record.backchannelLogoutUri ? record.backchannelLogoutSessionRequired : undefined,
    dpop_bound_access_tokens: record.requireDpop,
    // Known to oidc-provider only with mutual TLS on (./mutual-tls.ts), so named only when set.
    ...(record.certificateBoundTokens && { tls_client_certificate_bound_access_tokens: true }),
    // The FAPI 2.0 Security Profile (src/clients/fapi.ts) pushes every authorization request.
    require_pushed_authorization_requests: record.requirePar || record.fapi2,
    ...(record.fapi2 && { [FAPI_PROFILE_METADATA]: FAPI_2_0 }),
    require_signed_request_object: record.requireSignedRequestObject,
    // What signs for it (./provider.ts offers the algorithms keys/ has keys for). Unset, userinfo answers JSON.
    id_token_signed_response_alg: record.signingAlg,
    authorization_signed_response_alg: record.signingAlg,
    introspection_signed_response_alg: record.signingAlg,
    ...(record.signedUserinfo && { userinfo_signed_response_alg: record.signingAlg }),
    // And what encrypts them to its key (src/clients/response-encryption.ts); unset, they are signed only.
    ...encryptionMetadata(record.responseEncryption, record.signedUserinfo),
    subject_type: record.subjectType,
    sector_identifier_uri: sectorIdentifierUriFor(record),
  };
}

/**
 * A pairwise client's sector, as oidc-provider takes it: a URI whose host is the sector fixed at registration
 * (src/clients/sector-identifiers.ts). The library wants one, https, for a client with redirect URIs on more than
 * one host, and reads only its host, since it is told not to fetch it (./provider.ts); the real document was
 * checked at registration. So its `sectorIdentifier` is always the registered one, whatever the redirect URIs now.
 */
function sectorIdentifierUriFor(record: ClientRecord): string | undefined {
  return record.subjectType === 'pairwise' && record.pairwiseSector ? `https://${record.pairwiseSector}/` : undefined;
}

/**
 * oidc-provider's `scope` metadata may name only OpenID Connect scopes; the API scopes in our record are
 * enforced per API (./resource-servers.ts). A user-facing client restricted to API scopes may still use openid.
 */
function oidcScopesOf(record: ClientRecord, oidcScopes: readonly string[]): string | undefined {
  const named = record.scope.split(' ').filter(Boolean);
  if (named.length === 0) return undefined;
  const oidc = named.filter((scope) => oidcScopes.includes(scope));
  if (oidc.length > 0) return oidc.join(' ');
  return record.type === 'service' ? undefined : 'openid';
}

/**
 * A native app (RFC 8252): a device client, one sent back to a private-use scheme, or one registered as native
 * (`nativeApp`: a desktop or command-line app, an MCP client). oidc-provider lets it come back on any loopback port
 * (§7.3) and asks the person for consent each time, since such an app cannot prove who it is (§8.6).
 */
export function isNativeApp(record: ClientRecord): boolean {
  return record.type === 'device' || record.metadata.application_type === 'native' || record.redirectUris.some(isCustomSchemeRedirect);
}

/** A private-use URI scheme (com.example.app:/callback) marks a native app (RFC 8252 §7.1). */
function isCustomSchemeRedirect(uri: string): boolean {
  const protocol = URL.parse(uri)?.protocol;
  return protocol !== undefined && protocol !== 'http:' && protocol !== 'https:';
}

export class ClientAdapter implements Adapter {
  constructor(
    private readonly catalog: Catalog,
    private readonly oidcScopes: readonly string[] = OIDC_SCOPES,
  ) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const record = await this.catalog.client(id);
    return record ? (toClientMetadata(record, this.oidcScopes) as AdapterPayload) : undefined;
  }

  async upsert(): Promise<void> {
    throw new Error('clients are managed with the CLI or the admin API');
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async consume(): Promise<void> {
    throw new Error('clients cannot be consumed');
  }
  async destroy(): Promise<void> {
    throw new Error('clients are managed with the CLI or the admin API');
  }
  async revokeByGrantId(): Promise<void> {}
}
