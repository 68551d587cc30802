/**
 * The oidc-provider configuration: which protocol features are on, token lifetimes, and the hooks through which
 * the provider reaches our users, clients, APIs and pages. Protocol behaviour lives here; storage, pages and
 * domain records live in their own folders and are passed in.
 */
import type { AccessToken, Client, ClientCredentials, KoaContextWithOIDC, RefreshToken } from 'oidc-provider';
import { CLIENT_REGISTRATION_PATH } from '../client-registration/path.js';
import Provider, { type Configuration, errors, interactionPolicy } from 'oidc-provider';
import { emailConfirmationPrompt } from './email-confirmation-prompt.js';
import { dpopFeature } from './dpop-nonces.js';
import { pairwiseIdentifier } from './pairwise-subjects.js';
import { PASSWORD_CHANGE_PROMPT, passwordChangePrompt } from './password-change-prompt.js';
import { termsPrompt } from './terms-prompt.js';
import { createPrompt } from './create-prompt.js';
import { MFA_ACR, SECOND_FACTOR_REQUESTED, secondFactorWanted } from '../accounts/two-factor.js';
import type { UserRepository } from '../accounts/users.js';
import type { ClientRepository } from '../clients/clients.js';
import type { Config } from '../config.js';
import { EXTERNAL_SIGNING_ACK, InlineSigningKey } from '../keys/inline-signing-key.js';
import { SIGNING_ALG, SIGNING_ALGS, type SigningJwk } from '../keys/signing-keys.js';
import { FAPI2_ASSERTION_ALGS, FAPI_2_0, FAPI_PROFILE_METADATA } from '../clients/fapi.js';
import { ENCRYPTION_ALGS, ENCRYPTION_ENCS } from '../clients/response-encryption.js';
import { accountFinder, claimsByScope, type GrantReadAhead, type Membership, tokenClaims } from './accounts.js';
import type { Catalog } from './catalog.js';
import { firstPartyGrantLoader } from './first-party.js';
import { bitsOfOpaqueRandomness } from './opaque-tokens.js';
import { mtlsEndpointAliases, mutualTlsAuthMethods, mutualTlsFeature } from './mutual-tls.js';
import { outboundFetch } from './outbound-fetch.js';
import type { RevocationLists } from './revocation-lists.js';
import { resourceIndicators } from './resource-servers.js';
import { claimsParameter } from './claims-parameter.js';
import { EXCHANGED_TOKEN_GTY, exchangedTokenLive } from './token-exchange.js';
import { offeredOidcScopes } from './scopes.js';
import { IDP_HINT_PARAMETERS } from '../federation/identity-providers.js';
import { pastMaximum, sessionTtl } from './session-lifetime.js';
import { rethrowStoreError } from '../store/outages.js';

type DeviceFlowFeature = NonNullable<NonNullable<Configuration['features']>['deviceFlow']>;

/** The device flow's pages: code entry, confirmation, success (RFC 8628 §3.3). */
export interface DeviceFlowPages extends Required<Pick<DeviceFlowFeature, 'userCodeInputSource' | 'userCodeConfirmSource' | 'successSource'>> {
  /** The answer while the person's address is locked for entering too many wrong codes. */
  tooManyGuesses(ctx: KoaContextWithOIDC, waitMs: number): void;
}

/** The pages oidc-provider renders itself (errors it cannot redirect, logout confirmation, the device flow's). */
export interface ProviderPages {
  renderError: NonNullable<Configuration['renderError']>;
  logoutSource: (ctx: KoaContextWithOIDC, form: string) => Promise<void>;
  postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => Promise<void>;
  deviceFlow: DeviceFlowPages;
}

export interface ProviderDependencies {
  config: Config;
  adapter: NonNullable<Configuration['adapter']>;
  catalog: Catalog;
  users: UserRepository;
  clients: ClientRepository;
  signingKeys: SigningJwk[];
  /** Keygrip order: the first signs, all verify. */
  cookieSecrets: string[];
  pages: ProviderPages;
  /** Reads an access token's grant along with its user at userinfo (one SQL round trip instead of two). */
  readGrantWithUser?: GrantReadAhead;
  /** The key of pairwise subject identifiers (./pairwise-subjects.ts). */
  pairwiseSalt: string;
  /** Users' roles with their groups', and their groups (src/accounts/groups.ts). */
  groups: Membership;
  /** The key of DPoP nonces (./dpop-nonces.ts). */
  dpopNonceSecret: Buffer;
  /** The mutual TLS authorities' revocation lists (MTLS_CRL_FILE), when configured. */
  revocations?: RevocationLists;
}

export function createProvider(deps: ProviderDependencies): Provider {
  const { config, catalog, pages } = deps;
  const signingAlgs = SIGNING_ALGS.filter((alg) => deps.signingKeys.some((key) => key.alg === alg));
  const findAccount = accountFinder(deps.users, {
    readGrantWithUser: deps.readGrantWithUser,
    userClaims: config.userClaims,
    passwordMaxAgeSeconds: config.passwords.maxAgeSeconds,
    membership: deps.groups,
  });
  const policy = interactionPolicyWithLoginChecks({
    sessionMaxSeconds: config.ttl.sessionMax,
    catalog,
    emailConfirmationRequired: config.mail.confirmationRequired,
    registrationOpen: config.registration.mode === 'open',
    termsVersion: config.terms?.version,
  });
  const provider = new Provider(config.issuer, {
    adapter: deps.adapter,
    jwks: { keys: config.keys.signInline ? deps.signingKeys.map((jwk) => new InlineSigningKey(jwk)) : deps.signingKeys },
    cookies: {
      keys: deps.cookieSecrets,
      // SameSite=None when POST is accepted at /auth: a relying party's cross-site form post must carry the
      // session (oidc-provider insists); the interaction and form cookies stay Lax and CSRF-checked.
      long: { httpOnly: true, sameSite: config.authorizationPost ? 'none' : 'lax', secure: config.production },
      short: { httpOnly: true, sameSite: 'lax', secure: config.production },
    },
    findAccount: (ctx, sub, token) => {
      refuseExpiredAccessToken(token);
      return Promise.resolve(findAccount(ctx, sub, token)).catch(rethrowStoreError);
    },
    scopes: offeredOidcScopes(config.claimScopes),
    claims: claimsByScope(config.userClaims, config.claimScopes),
    // `pairwise` clients get a `sub` of their own sector (./pairwise-subjects.ts). Their sector document was
    // checked when they were registered (src/clients/sector-identifiers.ts), not fetched again while serving.
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: pairwiseIdentifier(deps.pairwiseSalt),
    sectorIdentifierUriValidate: () => false,
    // A client asks for a sign-in with two steps by sending this in acr_values (step-up; ./second-factor checks).
    acrValues: [MFA_ACR],
    // An app may name the identity provider to sign in with, skipping our login page (src/interaction/
    // federated-sign-in.ts): `idp_hint`, or Keycloak's `kc_idp_hint` for apps that moved from it.
    extraParams: IDP_HINT_PARAMETERS,
    // Release the claims of the granted scopes in the ID token as well as at userinfo, as most RPs expect.
    conformIdTokenClaims: false,
    extraTokenClaims: tokenClaims(deps.users, catalog, config.userClaims, config.claimScopes, deps.groups),
    extraClientMetadata: { properties: ['first_party', FAPI_PROFILE_METADATA] },
    // Dynamic client registration is ours (src/client-registration/), not oidc-provider's: discovery names it.
    discovery: {
      claim_types_supported: ['normal'],
      // OpenID Connect Discovery's list of the prompts an app may ask for (oidc-provider does not publish it).
      prompt_values_supported: ['none', ...policy.filter((prompt) => prompt.requestable).map((prompt) => prompt.name)],
      ...(config.clientRegistration === 'off' ? {} : { registration_endpoint: `${config.issuer}${CLIENT_REGISTRATION_PATH}` }),
      ...(config.clientIdMetadataDocuments ? { client_id_metadata_document_supported: true } : {}),
      ...(config.mutualTls?.endpointsUrl ? { mtls_endpoint_aliases: mtlsEndpointAliases(config.mutualTls.endpointsUrl) } : {}),
    },
    responseTypes: ['code'],
    formats: { bitsOfOpaqueRandomness },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' || isFapi2(client) },
    // Secrets are stored as HMACs (src/clients/secrets.ts), so nothing may use one as a symmetric key.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none', ...mutualTlsAuthMethods(config.mutualTls)],
    // What we sign is signed with the algorithms keys/ holds keys for (src/keys/signing-keys.ts: RS256 always,
    // PS256, ES256 and EdDSA where added), so discovery offers nothing else: a client registered for another algorithm would
    // be answered with an error at its first response.
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      idTokenSigningAlgValues: signingAlgs,
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      authorizationSigningAlgValues: signingAlgs,
      introspectionSigningAlgValues: signingAlgs,
      userinfoSigningAlgValues: signingAlgs,
      // Responses encrypted to a client's own key (src/clients/response-encryption.ts): public-key algorithms only.
      idTokenEncryptionAlgValues: [...ENCRYPTION_ALGS],
      authorizationEncryptionAlgValues: [...ENCRYPTION_ALGS],
      introspectionEncryptionAlgValues: [...ENCRYPTION_ALGS],
      userinfoEncryptionAlgValues: [...ENCRYPTION_ALGS],
      idTokenEncryptionEncValues: [...ENCRYPTION_ENCS],
      authorizationEncryptionEncValues: [...ENCRYPTION_ENCS],
      introspectionEncryptionEncValues: [...ENCRYPTION_ENCS],
      userinfoEncryptionEncValues: [...ENCRYPTION_ENCS],
      // Nothing is encrypted to us: request objects come signed, never encrypted (keys/ holds signing keys only).
      requestObjectEncryptionAlgValues: [],
      requestObjectEncryptionEncValues: [],
    },
    enableHttpPostMethods: config.authorizationPost,
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: SIGNING_ALG,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Behind a proxy that passes the client certificate on (MTLS_CERTIFICATE_HEADER): RFC 8705.
      ...(config.mutualTls && { mTLS: mutualTlsFeature(config.mutualTls.header, config.mutualTls.trustedAuthorities, deps.revocations) }),
      introspection: { enabled: true, allowedPolicy: introspectionPolicy(catalog, deps.users) },
      revocation: { enabled: true, allowedPolicy: revocationAllowed },
      userinfo: { enabled: true },
      dPoP: dpopFeature(deps.dpopNonceSecret, config.dpopNonceRequired),
      // Signed responses, for apps and APIs that must prove where an answer came from (FAPI's message signing):
      // the authorization response as a JWT when the app asks with response_mode=jwt (JARM); introspection's as
      // one when the API sends Accept: application/token-introspection+jwt (RFC 9701); userinfo's for the
      // clients registered with signedUserinfo (userinfo_signed_response_alg). Encrypted as well for the
      // clients registered with responseEncryption, to their own key.
      jwtResponseModes: { enabled: true },
      jwtIntrospection: { enabled: true },
      jwtUserinfo: { enabled: true },
      encryption: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: pages.logoutSource,
        postLogoutSuccessSource: pages.postLogoutSuccessSource,
      },
      // Logout tokens to the clients that register a URI (src/oidc/backchannel-logout.ts says how they are sent).
      backchannelLogout: { enabled: true },
      resourceIndicators: resourceIndicators(catalog, signingAlgs),
      claimsParameter: claimsParameter(catalog, config.claimScopes),
      // Request objects (RFC 9101, JAR) by value, signed with the client's own key (jwks or jwks_uri): HS* cannot be
      // checked, since client secrets are kept as HMACs. By reference only through PAR (request_uri), as in 9.x.
      requestObjects: { enabled: true },
      // For `device` clients (TVs, command-line tools): 8 characters of a 20-letter alphabet without vowels or
      // look-alikes (34 bits, RFC 8628 §6.1), entered at /device; wrong ones count against the address's
      // sign-in limit (src/security/user-code-guard.ts).
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: pages.deviceFlow.userCodeInputSource,
        userCodeConfirmSource: pages.deviceFlow.userCodeConfirmSource,
        successSource: pages.deviceFlow.successSource,
      },
      externalSigningSupport: { enabled: config.keys.signInline, ack: EXTERNAL_SIGNING_ACK },
      // The FAPI 2.0 Security Profile for the clients registered with it (src/clients/fapi.ts): a pushed request
      // must name its redirect_uri, a request object its exp and nbf; everyone else is served as before.
      fapi: { enabled: true, profile: (_ctx, client) => (client && isFapi2(client) ? FAPI_2_0 : undefined) },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy,
    },
    loadExistingGrant: firstPartyGrantLoader(catalog),
    // A FAPI 2.0 client's private_key_jwt assertions: for the issuer alone (oidc-provider's own check for the
    // profile) and signed with an algorithm the profile allows, which the global list (RS256 too) does not ensure.
    assertJwtClientAuthClaimsAndHeader: async (ctx, claims, header, client) => {
      if (!isFapi2(client)) return;
      if (claims.aud !== ctx.oidc.issuer) throw new errors.InvalidClientAuth('audience (aud) must equal the issuer identifier url');
      if (!FAPI2_ASSERTION_ALGS.includes(String(header.alg))) {
        throw new errors.InvalidClientAuth(`a FAPI 2.0 client signs its client assertions with ${FAPI2_ASSERTION_ALGS.join(', ')}, not ${String(header.alg)}`);
      }
    },
    // Every use of a refresh token rotates it; presenting a rotated one again revokes the whole grant. Not for a
    // FAPI 2.0 client, whose profile asks for no rotation: its refresh tokens are bound to its authentication.
    rotateRefreshToken: (ctx) => !(ctx.oidc.client && isFapi2(ctx.oidc.client)),
    clientBasedCORS: (_ctx, origin, client) =>
      client.redirectUris?.some((uri) => URL.parse(uri)?.origin === origin) ?? false,
    renderError: pages.renderError,
    fetch: outboundFetch(config.allowPrivateNetworkCalls),
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.apiAccessToken,
      AuthorizationCode: 60,
      BackchannelAuthenticationRequest: 600,
      DeviceCode: config.ttl.deviceCode,
      Grant: config.ttl.grant,
      IdToken: config.ttl.idToken,
      Interaction: 3600,
      RefreshToken: (ctx, token, client) => refreshTokenTtl(ctx, config, token, client),
      Session: sessionTtl(config.ttl),
    },
  });
  provider.proxy = config.proxy;
  return provider;
}

/**
 * The base policy, with the prompts that hold a signed-in account until it has chosen a new password
 * (./password-change-prompt.ts) and, when required, confirmed its address (./email-confirmation-prompt.ts); plus
 * three login checks: a session whose account is no longer usable (disabled, deleted, or
 * signed out everywhere, src/oidc/accounts.ts) asks for a new login, instead of carrying on without an account;
 * so does a session whose sign-in had no second step when the client requires or asks for one (step-up:
 * src/interaction/second-factor.ts), and a session that reached SESSION_MAX_TTL (./session-lifetime.ts). And
 * `prompt=consent` asks a person only for a third-party client: a first-party one has no consent page
 * (./first-party.ts), yet OIDC Core §11 makes every client send prompt=consent with offline_access.
 */
function interactionPolicyWithLoginChecks(options: {
  sessionMaxSeconds: number;
  catalog: Catalog;
  emailConfirmationRequired: boolean;
  registrationOpen: boolean;
  termsVersion: string | undefined;
}) {
  const { sessionMaxSeconds, catalog, emailConfirmationRequired, registrationOpen, termsVersion } = options;
  const policy = interactionPolicy.base();
  if (emailConfirmationRequired) policy.add(emailConfirmationPrompt(), 1);
  // First, so that prompt=create opens at the registration page even for a browser already signed in.
  if (registrationOpen) policy.add(createPrompt(), 0);
  // Right after the login, ahead of the address's confirmation and consent, as Keycloak's required actions come;
  // the terms of service next, as a new password comes first there too.
  policy.add(passwordChangePrompt(), 1);
  if (termsVersion) policy.add(termsPrompt(termsVersion), policy.findIndex((prompt) => prompt.name === PASSWORD_CHANGE_PROMPT) + 1);
  const consentRequested = policy.get('consent')?.checks.get('consent_prompt');
  if (consentRequested) {
    const asked = consentRequested.check;
    consentRequested.check = async (ctx) => (await asked(ctx)) && !(await catalog.client(ctx.oidc.client?.clientId ?? ''))?.firstParty;
  }
  policy.get('login')?.checks.push(
    new interactionPolicy.Check(
      'account_unavailable',
      'the signed-in account is disabled, deleted or was signed out everywhere',
      'login_required',
      async (ctx) => Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account,
    ),
    new interactionPolicy.Check(
      SECOND_FACTOR_REQUESTED,
      'the client requires or asked for a second factor (acr_values) and the sign-in of this session had none',
      'login_required',
      async (ctx) =>
        Boolean(ctx.oidc.session?.accountId) &&
        ctx.oidc.session?.acr !== MFA_ACR &&
        secondFactorWanted(ctx.oidc.params ?? undefined, await catalog.client(ctx.oidc.client?.clientId ?? '')),
    ),
    new interactionPolicy.Check(
      'session_max_age',
      'the session reached its maximum lifetime',
      'login_required',
      (ctx) => Boolean(ctx.oidc.session?.accountId) && pastMaximum(sessionMaxSeconds, ctx.oidc.session),
    ),
  );
  return policy;
}

/**
 * A refresh token rotated for a browser-based public client keeps the time its predecessor had left, so a
 * chain of rotations ends when the first token would have (RFC 9700 §4.14.2); everyone else gets the full lifetime.
 */
function refreshTokenTtl(
  ctx: KoaContextWithOIDC | undefined,
  config: Config,
  token: RefreshToken,
  client: Client,
): number {
  const rotated = ctx?.oidc?.entities.RotatedRefreshToken;
  if (rotated && client.clientAuthMethod === 'none' && client.applicationType === 'web' && !token.isSenderConstrained()) {
    return rotated.remainingTTL;
  }
  return config.ttl.refreshToken;
}

/**
 * Userinfo finds its access token with the library's clock tolerance (15 s, meant for timestamps made by other
 * parties' clocks) and never checks its expiry again, so a token past ACCESS_TOKEN_TTL, which introspection already
 * answers inactive, was served for 15 s more. Looking up the token's account is the first hook userinfo calls with
 * the token in hand. (The token endpoint checks a code's or refresh token's expiry before it looks up accounts.)
 */
function refuseExpiredAccessToken(token: { kind: string; isExpired: boolean } | undefined): void {
  if (token?.kind === 'AccessToken' && token.isExpired) throw new errors.InvalidToken('access token is expired');
}

type IntrospectableToken = AccessToken | ClientCredentials | RefreshToken;

const isExchanged = (token: IntrospectableToken): token is AccessToken => token.kind === 'AccessToken' && (token as AccessToken).gty === EXCHANGED_TOKEN_GTY;

/**
 * A client may introspect tokens issued to itself; confidential clients (APIs) may introspect any token. A token
 * whose client has since been disabled or removed is answered inactive, as Keycloak answers it: that client can
 * no longer use its tokens anywhere else (userinfo refuses them, its grants are gone or refused), and its
 * client-credentials tokens have no grant the provider would check. The record comes from the catalog's memory.
 * A token issued by token exchange is answered inactive once its user is disabled or signed out everywhere.
 */
function introspectionPolicy(catalog: Catalog, users: UserRepository) {
  const callerMay = async (client: Client, token: IntrospectableToken): Promise<boolean> => {
    if (token.clientId === client.clientId) return true;
    if (client.clientAuthMethod === 'none') return false;
    return token.clientId !== undefined && (await catalog.client(token.clientId)) !== undefined;
  };
  return async (_ctx: KoaContextWithOIDC, client: Client, token: IntrospectableToken): Promise<boolean> =>
    (await callerMay(client, token)) && (!isExchanged(token) || (await exchangedTokenLive(users, token)));
}

/**
 * Only the client a token was issued to may revoke it, and another client is told so (RFC 7009 §2.1) rather
 * than answered with a 200 that suggests the token is gone.
 */
async function revocationAllowed(_ctx: KoaContextWithOIDC, client: Client, token: IntrospectableToken): Promise<boolean> {
  if (token.clientId !== client.clientId) throw new errors.UnauthorizedClient('this token was not issued to this client');
  return true;
}

/** Whether oidc-provider's client was registered with the FAPI 2.0 Security Profile (our metadata, src/clients/fapi.ts). */
function isFapi2(client: Client): boolean {
  return (client as Client & { [FAPI_PROFILE_METADATA]?: string })[FAPI_PROFILE_METADATA] === FAPI_2_0;
}
