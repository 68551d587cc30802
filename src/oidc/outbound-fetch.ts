/**
 * The provider's calls out to URLs registered for clients: back-channel logout URIs and `jwks_uri`s.
 * oidc-provider connects only to public addresses (its SSRF guard: a dispatcher that drops connections to private,
 * loopback and link-local addresses), which suits URLs that anyone may register. Here only administrators register
 * clients, and a back-channel logout URI is often an application's address on the private network (or, in
 * development, on localhost), so ALLOW_PRIVATE_NETWORK_CALLS lifts the guard: by default outside production only.
 * The library's timeout (2.5 s) and empty user agent stay either way.
 */
import type { Configuration } from 'oidc-provider';

type Fetch = NonNullable<Configuration['fetch']>;

/** The `fetch` option: undefined keeps the library's guarded fetch. */
export function outboundFetch(allowPrivateNetworks: boolean): Fetch | undefined {
  if (!allowPrivateNetworks) return undefined;
  return (url, init) => {
    const { dispatcher: _guard, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
    return globalThis.fetch(url, rest);
  };
}
