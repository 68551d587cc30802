/**
 * Pairwise subject identifiers (OpenID Connect Core §8): a `pairwise` client's users get a `sub` of their own for
 * its sector, so that two apps cannot match up their users by `sub`. The sector is the host of the client's
 * `sector_identifier_uri`, or else of its one redirect URI host; redirect URIs on more than one host need the URI,
 * whose JSON array must list every one of them (§8.1).
 *
 * The sector is worked out once, when the client is registered, and kept with it: a later change of its redirect
 * URIs must not change every user's `sub`. The document is fetched then, and again when the redirect URIs change,
 * never while serving (oidc-provider's own fetch is turned off: src/oidc/provider.ts), so an app whose document
 * is unreachable for a while keeps working.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { redirectUriProblem } from './redirect-uris.js';

export const SUBJECT_TYPES = ['public', 'pairwise'] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];

/** How long the registration waits for the document, and the most of it read: as the library's own fetches. */
const FETCH_TIMEOUT_MS = 2500;
const MAX_DOCUMENT_BYTES = 64 * 1024;

/** Addresses a document may not come from unless ALLOW_PRIVATE_NETWORK_CALLS: loopback, private, link-local. */
const PRIVATE_NETWORKS = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
] as const) {
  PRIVATE_NETWORKS.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['::ffff:0:0', 96],
] as const) {
  PRIVATE_NETWORKS.addSubnet(network, prefix, 'ipv6');
}

/** Why `uri` cannot be a sector identifier URI, before it is fetched: https, or http on localhost in development. */
export function sectorIdentifierUriProblem(uri: string, options: { production: boolean }): string | undefined {
  const problem = redirectUriProblem(uri, { allowCustomScheme: false });
  if (problem) return problem;
  if (!uri.startsWith('https:') && options.production) return `${uri} must use https in production`;
  return undefined;
}

/** The sector a pairwise client's subjects are made for, or why there is none. */
export function sectorOf(sectorIdentifierUri: string | undefined, redirectUris: readonly string[]): { sector: string } | { problem: string } {
  if (sectorIdentifierUri) return { sector: new URL(sectorIdentifierUri).host };
  const hosts = new Set(redirectUris.map((uri) => URL.parse(uri)?.host ?? uri));
  if (hosts.size === 1) return { sector: [...hosts][0] as string };
  return { problem: 'redirect URIs on more than one host need a sectorIdentifierUri listing them all (OpenID Connect Core §8.1)' };
}

/**
 * Fetches the document at `uri` and checks that it lists every redirect URI; undefined when it does, else why
 * not, in a sentence for the administrator.
 */
export async function sectorDocumentProblem(uri: string, redirectUris: readonly string[], options: { allowPrivateNetworks: boolean }): Promise<string | undefined> {
  const host = new URL(uri).hostname.replace(/^\[|\]$/g, '');
  if (!options.allowPrivateNetworks && (await resolvesToPrivateNetwork(host))) {
    return `${uri} is on a private network, which this server does not call (ALLOW_PRIVATE_NETWORK_CALLS)`;
  }
  let listed: unknown;
  try {
    const response = await fetch(uri, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (response.status !== 200) return `${uri} answered ${response.status}, not 200 with a JSON array of redirect URIs`;
    const body = await response.text();
    if (Buffer.byteLength(body) > MAX_DOCUMENT_BYTES) return `${uri} answered more than ${MAX_DOCUMENT_BYTES / 1024} KB`;
    listed = JSON.parse(body);
  } catch (error) {
    return `${uri} could not be read: ${(error as Error).message}`;
  }
  if (!Array.isArray(listed) || !listed.every((entry) => typeof entry === 'string')) return `${uri} must answer a JSON array of redirect URIs`;
  const missing = redirectUris.filter((redirect) => !listed.includes(redirect));
  if (missing.length > 0) return `${uri} does not list ${missing.join(', ')}: it must list every redirect URI of the client`;
  return undefined;
}

async function resolvesToPrivateNetwork(host: string): Promise<boolean> {
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true }).catch(() => []);
  return addresses.some(({ address, family }) => PRIVATE_NETWORKS.check(address, family === 6 ? 'ipv6' : 'ipv4'));
}
