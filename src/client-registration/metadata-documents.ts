/**
 * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), when
 * CLIENT_ID_METADATA_DOCUMENTS=true: an app whose `client_id` is an https URL is what the JSON document at that URL
 * says it is (RFC 7591 metadata, its `client_id` the URL itself), with no registration here. MCP clients identify
 * themselves so. The document is fetched when the app is first seen (./document-fetch.ts: public addresses only,
 * unless ALLOW_PRIVATE_NETWORK_CALLS; no redirects; 10 KB; 5 s) and kept as its Cache-Control says, between five
 * minutes and a day (an hour when it says nothing); a document refused or out of reach is asked for again after a
 * minute. Such an app is public (PKCE) or authenticates with private_key_jwt: a public document cannot share a
 * secret. It signs people in with the authorization code flow only, is never first-party (consent is asked), and
 * never gets the admin API's scopes.
 */
import { LRUCache } from 'lru-cache';
import { type ClientRecord, DEFAULT_USER_SCOPE, newClientSchema } from '../clients/clients.js';
import { describeIssues } from '../errors.js';
import type { Logger } from '../logger.js';
import { fetchJsonDocument } from './document-fetch.js';
import { RegistrationError, refuseCalledUrls, registrationOf, registrationRefusal } from './metadata.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const MAX_ID_LENGTH = 2048;
const MAX_DOCUMENT_BYTES = 10 * 1024;
const FETCH_TIMEOUT_MS = 5000;
const MIN_KEEP_SECONDS = 300;
const MAX_KEEP_SECONDS = 86_400;
const DEFAULT_KEEP_SECONDS = 3600;
const RETRY_AFTER_SECONDS = 60;

/**
 * Whether `clientId` names a metadata document: an https URL (http on this machine, outside production) with a
 * path, no fragment or credentials, written as URL would write it (no dot segments, a lower-case host).
 */
export function isMetadataDocumentId(clientId: string, production: boolean): boolean {
  if (clientId.length > MAX_ID_LENGTH || !/^https?:\/\//.test(clientId)) return false;
  const url = URL.parse(clientId);
  if (!url || url.href !== clientId || url.hash || url.username || url.password || url.pathname === '/') return false;
  return url.protocol === 'https:' || (!production && url.protocol === 'http:' && LOOPBACK.has(url.hostname));
}

export interface MetadataDocumentOptions {
  production: boolean;
  allowPrivateNetworks: boolean;
  logger: Logger;
}

interface Resolved {
  record?: ClientRecord;
  /** What only describes the app (client_uri, policy_uri, …), for the consent page. */
  description?: Record<string, unknown>;
}

export class ClientMetadataDocuments {
  readonly #documents: LRUCache<string, Resolved>;

  constructor(private readonly options: MetadataDocumentOptions) {
    this.#documents = new LRUCache<string, Resolved>({
      max: 1000,
      ttl: DEFAULT_KEEP_SECONDS * 1000,
      ignoreFetchAbort: true,
      fetchMethod: async (clientId, _stale, { options: entry }) => {
        try {
          const { json, maxAgeSeconds } = await fetchJsonDocument(new URL(clientId), {
            allowPrivateNetworks: this.options.allowPrivateNetworks,
            maxBytes: MAX_DOCUMENT_BYTES,
            timeoutMs: FETCH_TIMEOUT_MS,
          });
          const { record, description } = this.#recordOf(clientId, json);
          entry.ttl = Math.min(MAX_KEEP_SECONDS, Math.max(MIN_KEEP_SECONDS, maxAgeSeconds ?? DEFAULT_KEEP_SECONDS)) * 1000;
          return { record, description };
        } catch (error) {
          // The app cannot be used until its document is right; the request answers invalid_client, the log why.
          this.options.logger.warn({ clientId, reason: (error as Error).message }, 'a client ID metadata document was refused');
          entry.ttl = RETRY_AFTER_SECONDS * 1000;
          return {};
        }
      },
    });
  }

  /** Whether `clientId` is one of these (a URL of the right form); others are registered clients. */
  names(clientId: string): boolean {
    return isMetadataDocumentId(clientId, this.options.production);
  }

  /** The app `clientId` names, or undefined when its document cannot be had or is refused. */
  async client(clientId: string): Promise<ClientRecord | undefined> {
    return (await this.#documents.fetch(clientId))?.record;
  }

  /** What the app's document says of it beside its metadata (client_uri, policy_uri, …); undefined as for `client`. */
  async description(clientId: string): Promise<Record<string, unknown> | undefined> {
    return (await this.#documents.fetch(clientId))?.description;
  }

  /** The document as a client and what describes it, or a RegistrationError naming what is wrong with it. */
  #recordOf(clientId: string, document: Record<string, unknown>): { record: ClientRecord; description: Record<string, unknown> } {
    if (document.client_id !== clientId) throw new RegistrationError('invalid_client_metadata', 'client_id: must be the document’s own URL');
    const secret = ['client_secret', 'client_secret_expires_at'].find((name) => name in document);
    if (secret) throw new RegistrationError('invalid_client_metadata', `${secret}: a public document cannot hold a secret`);
    // Back-channel logout and pairwise subjects need what a document cannot give (a server of the app's own that we
    // trust to call, a sector checked at registration): ignored, as RFC 7591 §2 has unknown metadata ignored.
    const { backchannel_logout_uri: _uri, backchannel_logout_session_required: _sid, subject_type: _subject, sector_identifier_uri: _sector, ...usable } = document;
    const { client, description } = registrationOf(usable, { allowServices: false });
    if (client.type !== 'spa' && client.type !== 'web') throw new RegistrationError('invalid_client_metadata', 'grant_types: authorization_code only, for an app named by its document');
    if (client.type === 'web' && client.tokenEndpointAuthMethod !== 'private_key_jwt') {
      throw new RegistrationError('invalid_client_metadata', 'token_endpoint_auth_method: none or private_key_jwt, since a public document cannot share a secret');
    }
    if (this.options.allowPrivateNetworks) refuseCalledUrls(client);
    const checked = newClientSchema.safeParse(client);
    if (!checked.success) throw registrationRefusal(describeIssues(checked.error.issues));
    const plain = client.type === 'web' && this.options.production && client.redirectUris?.find((uri) => uri.startsWith('http:'));
    if (plain) throw new RegistrationError('invalid_redirect_uri', `redirect_uris: ${plain} must use https in production`);
    const now = new Date();
    const metadata: Record<string, unknown> = {};
    if (client.jwks) metadata.jwks = client.jwks;
    if (client.jwksUri) metadata.jwks_uri = client.jwksUri;
    if (client.nativeApp) metadata.application_type = 'native';
    const record: ClientRecord = {
      clientId,
      name: typeof document.client_name === 'string' && document.client_name.trim() ? client.name : `An app at ${new URL(clientId).host}`,
      type: client.type,
      redirectUris: checked.data.redirectUris,
      postLogoutRedirectUris: checked.data.postLogoutRedirectUris,
      grantTypes: ['authorization_code', 'refresh_token'],
      tokenEndpointAuthMethod: client.tokenEndpointAuthMethod ?? 'none',
      scope: client.scope ?? DEFAULT_USER_SCOPE,
      roles: [],
      firstParty: false,
      metadata,
      backchannelLogoutUri: null,
      backchannelLogoutSessionRequired: false,
      requireDpop: checked.data.requireDpop,
      certificateBoundTokens: false,
      requirePar: checked.data.requirePar,
      requireSignedRequestObject: checked.data.requireSignedRequestObject,
      // What describes it is the document's (`description`, for the consent page), not set here.
      clientUri: null,
      policyUri: null,
      tosUri: null,
      requireMfa: false,
      signedUserinfo: checked.data.signedUserinfo,
      signingAlg: checked.data.signingAlg,
      responseEncryption: checked.data.responseEncryption ?? null,
      fapi2: false,
      tokenExchangeFrom: [],
      subjectType: 'public',
      sectorIdentifierUri: null,
      pairwiseSector: null,
      disabledAt: null,
      createdAt: now,
      updatedAt: now,
      secrets: [],
    };
    return { record, description };
  }
}
