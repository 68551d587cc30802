/**
 * Which URIs a client may register for OpenID Connect Back-Channel Logout 1.0: where we POST a logout token when a
 * session the client took part in ends. The spec asks for an absolute URI without a fragment (§2.2); as for
 * redirect URIs, https everywhere and plain http only on the loopback interface outside production (an app
 * under development on localhost). The token names the user, so it never travels in the clear to another host.
 */
import { LOOPBACK_HOSTS } from './redirect-uris.js';

/** Why `uri` cannot receive logout tokens, or undefined when it can. */
export function backchannelLogoutUriProblem(uri: string, options: { production: boolean }): string | undefined {
  const url = URL.parse(uri);
  if (!url) return `${uri} is not an absolute URL`;
  if (url.hash || uri.includes('#')) return `${uri} must not contain a fragment`;
  // fetch refuses a URL with credentials; a relying party authenticates the logout token, not our request.
  if (url.username || url.password) return `${uri} must not contain credentials`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.has(url.hostname)) {
    return `${uri} must use https (plain http is allowed only for localhost, outside production)`;
  }
  return options.production ? `${uri} must use https in production` : undefined;
}
