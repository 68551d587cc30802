/**
 * Which redirect URIs a client may register. Exact strings only (no wildcards, no fragments, RFC 9700 §4.1.3);
 * https anywhere, plain http only on the loopback interface (local development, RFC 8252 §7.3), and for public
 * clients a private-use scheme in reverse-domain form (mobile apps, RFC 8252 §7.1).
 */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Why `uri` cannot serve as a client's JWK Set URL: https, or plain http on loopback outside production. */
export function jwksUriProblem(uri: string, options: { production: boolean }): string | undefined {
  const problem = redirectUriProblem(uri, { allowCustomScheme: false });
  if (problem) return problem;
  if (uri.startsWith('http:') && options.production) return `${uri} must use https in production`;
  return undefined;
}

/** JWK members that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Why a client's JWK Set cannot be registered: only public RSA, EC or OKP keys verify its assertions. */
export function jwksProblem(jwks: { keys: Record<string, unknown>[] }): string | undefined {
  for (const [index, key] of jwks.keys.entries()) {
    if (!['RSA', 'EC', 'OKP'].includes(key.kty as string)) return `keys.${index}: kty must be RSA, EC or OKP (a public key), not ${String(key.kty)}`;
    const secret = PRIVATE_MEMBERS.find((member) => member in key);
    if (secret) return `keys.${index}: holds the private member "${secret}": register the public key only`;
  }
  return undefined;
}

/** Why `uri` cannot be registered, or undefined when it can. */
export function redirectUriProblem(uri: string, options: { allowCustomScheme: boolean }): string | undefined {
  // URL forgives these (it trims spaces, drops tabs and newlines, adds a missing //), but the provider compares
  // the registered string with the one a client sends: a client registered so could never sign in.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused here
  if (/[\s\u0000-\u001f\u007f]/.test(uri)) return `${JSON.stringify(uri)} must not contain spaces or control characters`;
  const url = URL.parse(uri);
  if (!url) return `${uri} is not an absolute URL`;
  if ((url.protocol === 'https:' || url.protocol === 'http:') && !uri.startsWith(`${url.protocol}//${url.host}`)) {
    return `${uri} must be written ${url.protocol}//${url.host}… (lower-case scheme and host, no default port)`;
  }
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
