/**
 * The relying party side of a sign-in at another identity provider (./identity-providers.ts), with openid-client:
 * discovery of an OpenID Connect provider (at its first use, then daily), the authorization request (code flow
 * with PKCE S256, a state, and for OpenID Connect a nonce), and the answer's checks (state, `iss`, the code's
 * redemption, the ID token's signature, audience, nonce and lifetime). What comes back is who the provider says the
 * person is: the ID token's claims, or for a plain OAuth 2.0 provider (GitHub, `oauth2`) its profile endpoint's
 * fields, read with the access token (./profiles.ts).
 *
 * openid-client is loaded at the first sign-in with a provider, not at start: a server without providers does
 * not carry it.
 */
import type { Configuration } from 'openid-client';
import { z } from 'zod';
import type { Logger } from '../logger.js';
import type { IdentityProvider } from './identity-providers.js';
import { claimsRead, unmetRequirement } from './mappers.js';
import { type UpstreamIdentity, identityFromClaims, identityFromProfile } from './profiles.js';

let library: Promise<typeof import('openid-client')> | undefined;
const openidClient = () => {
  library ??= import('openid-client');
  return library;
};

/** How long a provider has to answer each request (discovery, keys, the code's redemption, userinfo). */
const UPSTREAM_TIMEOUT_SECONDS = 10;

/** How long a provider's discovery document is used before it is fetched again (its endpoints may move). */
const DISCOVERY_TTL_MS = 24 * 3600 * 1000;

export type { UpstreamIdentity } from './profiles.js';

/**
 * What a sign-in keeps between sending the person to the provider and their coming back, with when it expires;
 * read back (from the interaction, or the account page's cookie) through this schema.
 */
export const pendingUpstreamSignIn = z.object({
  provider: z.string(),
  state: z.string(),
  nonce: z.string(),
  codeVerifier: z.string(),
  expiresAt: z.number(),
});
export type PendingUpstreamSignIn = z.infer<typeof pendingUpstreamSignIn>;

/** How long the person has at the provider before the answer is no longer taken. */
const UPSTREAM_SIGN_IN_TTL_MS = 10 * 60 * 1000;

/**
 * The state of a link begun on the account page (src/self-service/linked-identities.ts), which the provider's
 * answer is sent on to; a sign-in's state begins with its interaction's uid instead.
 */
export const ACCOUNT_LINK_STATE_PREFIX = 'account.';

/** A sign-in at the provider that did not come back with an identity, as a sentence for the person. */
export class UpstreamSignInError extends Error {}

/** The provider said who it is, and the entry's `require` does not let that account sign in here. */
export class UpstreamNotAllowedError extends UpstreamSignInError {}

export class UpstreamProviders {
  readonly #byId: Map<string, IdentityProvider>;
  readonly #configurations = new Map<string, { configuration: Promise<Configuration>; at: number }>();

  constructor(
    providers: readonly IdentityProvider[],
    private readonly issuer: string,
    private readonly logger: Logger,
  ) {
    this.#byId = new Map(providers.map((provider) => [provider.id, provider]));
  }

  /** The providers in the order the file lists them: the login page's buttons. */
  get list(): IdentityProvider[] {
    return [...this.#byId.values()];
  }

  get(id: string): IdentityProvider | undefined {
    return this.#byId.get(id);
  }

  /** The redirect URI registered at the provider: one per provider. */
  redirectUri(provider: IdentityProvider): string {
    return `${this.issuer}/federation/${provider.id}/callback`;
  }

  /** Where the provider sends the browser back after signing out there (`logout`): its post-logout redirect URI. */
  loggedOutUri(provider: IdentityProvider): string {
    return `${this.issuer}/federation/${provider.id}/logged-out`;
  }

  /**
   * The provider's end-session URL for a sign-out there, back to loggedOutUri with `state`; undefined when its
   * discovery names no end_session_endpoint (or it cannot be reached now: the sign-out here stands either way).
   */
  async endSessionUrl(provider: IdentityProvider, idToken: string, state: string): Promise<URL | undefined> {
    const oidc = await openidClient();
    try {
      const configuration = await this.#configuration(provider);
      if (!configuration.serverMetadata().end_session_endpoint) return undefined;
      return oidc.buildEndSessionUrl(configuration, { id_token_hint: idToken, post_logout_redirect_uri: this.loggedOutUri(provider), state });
    } catch {
      return undefined;
    }
  }

  /** The provider's authorization URL for a new sign-in, and what to keep until the person comes back. */
  async begin(provider: IdentityProvider, stateFor: (random: string) => string): Promise<{ url: URL; pending: PendingUpstreamSignIn }> {
    const oidc = await openidClient();
    const configuration = await this.#configuration(provider);
    const pending: PendingUpstreamSignIn = {
      provider: provider.id,
      state: stateFor(oidc.randomState()),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      expiresAt: Date.now() + UPSTREAM_SIGN_IN_TTL_MS,
    };
    const url = oidc.buildAuthorizationUrl(configuration, {
      ...provider.authorizationParameters,
      redirect_uri: this.redirectUri(provider),
      scope: provider.scope,
      state: pending.state,
      // A plain OAuth 2.0 provider returns no ID token to carry it back.
      ...(provider.type === 'oidc' ? { nonce: pending.nonce } : {}),
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    });
    return { url, pending };
  }

  /**
   * Checks the provider's answer (`query`, as it reached our redirect URI) against the sign-in kept, redeems the
   * code and reads who signed in: from the ID token (and userinfo, when the ID token lacks the address or a claim
   * the entry maps or requires), or for a plain OAuth 2.0 provider from its profile endpoint. An account the
   * entry's `require` does not let in is an UpstreamNotAllowedError.
   */
  async complete(provider: IdentityProvider, query: string, pending: PendingUpstreamSignIn): Promise<UpstreamIdentity> {
    const oidc = await openidClient();
    const configuration = await this.#configuration(provider);
    const answer = new URL(this.redirectUri(provider));
    answer.search = query;
    const identity = await this.#identity(oidc, configuration, provider, answer, pending);
    const unmet = unmetRequirement(provider.requirements, identity.claims);
    if (unmet) {
      this.logger.info({ provider: provider.id, subject: identity.subject, claim: unmet.claim }, 'an identity provider’s account does not meet the entry’s require');
      throw new UpstreamNotAllowedError(`Your ${provider.name} account may not sign in here: its ${unmet.claim} is not one of those allowed. Ask your administrator.`);
    }
    return identity;
  }

  /** Who the answer says signed in; any failure as an UpstreamSignInError with a sentence for the person. */
  async #identity(oidc: typeof import('openid-client'), configuration: Configuration, provider: IdentityProvider, answer: URL, pending: PendingUpstreamSignIn): Promise<UpstreamIdentity> {
    try {
      if (provider.type !== 'oidc') {
        const tokens = await oidc.authorizationCodeGrant(configuration, answer, { expectedState: pending.state, pkceCodeVerifier: pending.codeVerifier, idTokenExpected: false });
        const identity = await identityFromProfile(provider, (url, accept) => this.#read(configuration, provider, tokens.access_token, url, accept));
        if (!identity) throw new UpstreamSignInError(`${provider.name} did not say who you are. Start again, or sign in another way.`);
        return identity;
      }
      const tokens = await oidc.authorizationCodeGrant(configuration, answer, {
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        pkceCodeVerifier: pending.codeVerifier,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims) throw new UpstreamSignInError(`${provider.name} sent no ID token.`);
      let facts: Record<string, unknown> = claims;
      // Many providers put the address, groups and the like at userinfo only, not in the ID token.
      const incomplete = typeof claims.email !== 'string' || claimsRead(provider.mappers, provider.requirements).some((name) => !(name in claims));
      if (incomplete && configuration.serverMetadata().userinfo_endpoint) {
        facts = { ...(await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub)), ...claims };
      }
      return { ...identityFromClaims(claims.sub, facts), idToken: tokens.id_token };
    } catch (error) {
      throw this.#explained(provider, error);
    }
  }

  /** A GET of the provider's API with the person's access token: the JSON it answers, or undefined for a 404. */
  async #read(configuration: Configuration, provider: IdentityProvider, accessToken: string, url: string, accept: string): Promise<unknown> {
    const oidc = await openidClient();
    const response = await oidc.fetchProtectedResource(configuration, accessToken, new URL(url), 'GET', undefined, new Headers({ accept }));
    // GitHub answers 404 for what the token's scopes do not reach (the addresses, without user:email).
    if (response.status === 404) return undefined;
    if (!response.ok) throw new UpstreamSignInError(`${provider.name} did not say who you are (its API answered ${response.status}). Start again, or sign in another way.`);
    try {
      return await response.json();
    } catch {
      throw new UpstreamSignInError(`${provider.name}'s answer could not be accepted. Start again, or sign in another way.`);
    }
  }

  /**
   * Whether the provider answers (`authz identity-providers --check`): its discovery, or for a plain OAuth 2.0
   * provider its authorization endpoint (any answer but a server error); an UpstreamSignInError if not.
   */
  async check(provider: IdentityProvider): Promise<void> {
    if (!provider.endpoints) {
      await this.#configuration(provider);
      return;
    }
    const response = await fetch(provider.endpoints.authorization, { redirect: 'manual', signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_SECONDS * 1000) }).catch(() => undefined);
    await response?.body?.cancel();
    if (!response || response.status >= 500) throw unreachable(provider);
  }

  /**
   * Discovery, once a day per provider while it works (its keys are fetched again by openid-client whenever an ID
   * token names one it does not have); a failure is forgotten, so that the next sign-in tries again.
   */
  #configuration(provider: IdentityProvider): Promise<Configuration> {
    const kept = this.#configurations.get(provider.id);
    let found = kept && Date.now() - kept.at < DISCOVERY_TTL_MS ? kept.configuration : undefined;
    if (!found) {
      const discovered = this.#discover(provider);
      found = discovered;
      this.#configurations.set(provider.id, { configuration: discovered, at: Date.now() });
      discovered.catch(() => {
        if (this.#configurations.get(provider.id)?.configuration === discovered) this.#configurations.delete(provider.id);
      });
    }
    return found.catch((error: unknown) => {
      // Whatever kept discovery from working (no answer, an error page, a document that is not the issuer's), the
      // provider cannot be used now: the person can only try later or another way; the log says which.
      this.logger.warn({ provider: provider.id, err: error }, 'an identity provider’s discovery failed');
      throw unreachable(provider);
    });
  }

  async #discover(provider: IdentityProvider): Promise<Configuration> {
    const oidc = await openidClient();
    const { clientSecret } = provider;
    const authentication = !clientSecret ? oidc.None() : provider.tokenEndpointAuthMethod === 'client_secret_post' ? oidc.ClientSecretPost(clientSecret) : oidc.ClientSecretBasic(clientSecret);
    const insecure = [provider.issuer, ...Object.values(provider.endpoints ?? {})].some((url) => url.startsWith('http://'));
    let configuration: Configuration;
    if (provider.endpoints) {
      // A plain OAuth 2.0 provider has no discovery: its endpoints are in the file.
      const server = { issuer: provider.issuer, authorization_endpoint: provider.endpoints.authorization, token_endpoint: provider.endpoints.token };
      configuration = new oidc.Configuration(server, provider.clientId, clientSecret, authentication);
      if (insecure) oidc.allowInsecureRequests(configuration);
    } else {
      configuration = await oidc.discovery(new URL(provider.issuer), provider.clientId, clientSecret, authentication, {
        timeout: UPSTREAM_TIMEOUT_SECONDS,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
    }
    configuration.timeout = UPSTREAM_TIMEOUT_SECONDS;
    return configuration;
  }

  /** The sentence the person reads; what went wrong in detail goes to the log. */
  #explained(provider: IdentityProvider, error: unknown): UpstreamSignInError {
    if (error instanceof UpstreamSignInError) return error;
    const { name, code, error: oauthError, error_description: description } = error as Record<string, unknown> & Error;
    this.logger.warn({ provider: provider.id, err: error }, 'sign-in at an identity provider failed');
    if (name === 'AuthorizationResponseError' && oauthError === 'access_denied') return new UpstreamSignInError(`Signing in with ${provider.name} was cancelled.`);
    if (name === 'AuthorizationResponseError' || name === 'ResponseBodyError') return refused(provider, oauthError, description);
    // GitHub answers a code it will not redeem with 200 and an OAuth error in the body, not with a 400.
    const body = causes(error)
      .map((cause) => (cause.cause as { body?: { error?: unknown; error_description?: unknown } } | undefined)?.body)
      .find((found) => typeof found?.error === 'string');
    if (body) return refused(provider, body.error, body.error_description);
    if (code === 'OAUTH_TIMEOUT' || causes(error).some((cause) => ['TimeoutError', 'AbortError'].includes(cause.name) || cause.message === 'fetch failed')) {
      return unreachable(provider);
    }
    return new UpstreamSignInError(`${provider.name}'s answer could not be accepted. Start again, or sign in another way.`);
  }
}

function refused(provider: IdentityProvider, oauthError: unknown, description: unknown): UpstreamSignInError {
  const said = typeof description === 'string' ? `: ${description.slice(0, 200)}` : '';
  return new UpstreamSignInError(`${provider.name} refused the sign-in (${String(oauthError).slice(0, 64)}${said}).`);
}

const unreachable = (provider: IdentityProvider) => new UpstreamSignInError(`${provider.name} could not be reached. Try again in a moment, or sign in another way.`);

/** The error and what caused it, down the chain (openid-client wraps a failed fetch in a ClientError). */
function causes(error: unknown): Error[] {
  const chain: Error[] = [];
  for (let at = error; at instanceof Error && chain.length < 5; at = at.cause) chain.push(at);
  return chain;
}
