/**
 * Which redirect URIs a client may register. Exact strings only (no wildcards, no fragments, RFC 9700 §4.1.3);
 * https anywhere, plain http only on the loopback interface (local development, RFC 8252 §7.3), and for public
 * clients a private-use scheme in reverse-domain form (mobile apps, RFC 8252 §7.1).
 */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Why `uri` cannot be registered, or undefined when it can. */
export function redirectUriProblem(uri: string, options: { allowCustomScheme: boolean }): string | undefined {
  const url = URL.parse(uri);
  if (!url) return `${uri} is not an absolute URL`;
  if (url.hash || uri.includes('#')) return `${uri} must not contain a fragment`;
  if (uri.includes('*')) return `${uri} must not contain a wildcard: register every redirect URI exactly`;
  if (url.username || url.password) return `${uri} must not contain credentials`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return LOOPBACK_HOSTS.has(url.hostname) ? undefined : `${uri} must use https (plain http is allowed only for localhost)`;
  }
  if (!options.allowCustomScheme) return `${uri} must use https`;
  // A private-use scheme must be a reverse domain name the app owns, e.g. com.example.app:/callback.
  if (!url.protocol.slice(0, -1).includes('.')) return `${uri} must use https or a reverse-domain scheme such as com.example.app:/callback`;
  return undefined;
}
