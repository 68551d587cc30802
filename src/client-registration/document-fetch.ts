/**
 * Fetching a small JSON document from a URL anyone may name (a client ID metadata document), without letting
 * that URL reach this server's private network (SSRF): the host name is resolved as the connection is made, and a
 * connection to a private, loopback, link-local or otherwise special address is refused then, so a name that
 * resolves differently a second time (DNS rebinding) gains nothing. No redirect is followed; the answer must be
 * 200, JSON, and small; it has a few seconds.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

/** Addresses no public document is served from (RFC 6890's special-purpose registries, in short). */
const SPECIAL_ADDRESSES = (() => {
  const list = new BlockList();
  for (const [network, prefix] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
    ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv4');
  }
  for (const [network, prefix] of [
    // Not ::ffff:0:0/96: BlockList matches every IPv4 address against it. Mapped addresses are checked as IPv4 below.
    ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001::', 23], ['2001:db8::', 32],
    ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return list;
})();

export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  const mapped = family === 6 ? mappedIpv4(address) : undefined;
  if (mapped) return SPECIAL_ADDRESSES.check(mapped, 'ipv4');
  return SPECIAL_ADDRESSES.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:10.0.0.1, or ::ffff:a00:1) stands for. */
function mappedIpv4(address: string): string | undefined {
  const tail = /^(?:0{0,4}:){0,4}:?ffff:(.+)$/i.exec(address)?.[1];
  if (!tail) return undefined;
  if (isIP(tail) === 4) return tail;
  const [high, low] = tail.split(':').map((group) => Number.parseInt(group, 16));
  if (high === undefined || low === undefined || Number.isNaN(high) || Number.isNaN(low)) return undefined;
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** Why a document could not be had, as a sentence for the log. */
export class DocumentFetchError extends Error {}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup, refusing a name that resolves to any special address. */
function publicLookup(hostname: string, options: { all?: boolean }, callback: LookupCallback): void {
  dnsLookup(hostname, { all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((entry) => isSpecialAddress(entry.address));
    if (refused || addresses.length === 0) {
      return callback(Object.assign(new Error(`${hostname} resolves to ${refused?.address ?? 'nothing'}, which is not a public address`), { code: 'EPRIVATE' }), []);
    }
    if (options.all) return callback(null, addresses);
    const [first] = addresses as [LookupAddress];
    callback(null, first.address, first.family);
  });
}

export interface FetchedDocument {
  json: Record<string, unknown>;
  /** Its Cache-Control `max-age`, in seconds, if it gave one; 0 for `no-store` or `no-cache`. */
  maxAgeSeconds?: number;
}

export interface DocumentFetchOptions {
  /** Allow private and loopback addresses (ALLOW_PRIVATE_NETWORK_CALLS: development, or a trusted network). */
  allowPrivateNetworks: boolean;
  maxBytes: number;
  timeoutMs: number;
}

export function fetchJsonDocument(url: URL, options: DocumentFetchOptions): Promise<FetchedDocument> {
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (!options.allowPrivateNetworks && isIP(literal) && isSpecialAddress(literal)) {
    return Promise.reject(new DocumentFetchError(`${url.host} is not a public address`));
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'authz (client metadata)' },
        timeout: options.timeoutMs,
        ...(options.allowPrivateNetworks ? {} : { lookup: publicLookup as never }),
      },
      (response) => read(response, options.maxBytes).then(resolve, reject),
    );
    outgoing.on('timeout', () => outgoing.destroy(new DocumentFetchError(`no answer within ${options.timeoutMs} ms`)));
    outgoing.on('error', (error) => reject(error instanceof DocumentFetchError ? error : new DocumentFetchError(error.message)));
    outgoing.end();
  });
}

async function read(response: IncomingMessage, maxBytes: number): Promise<FetchedDocument> {
  if (response.statusCode !== 200) {
    response.resume();
    throw new DocumentFetchError(`answered ${response.statusCode}${response.headers.location ? ' (a redirect, which is not followed)' : ''}`);
  }
  const type = String(response.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    response.resume();
    throw new DocumentFetchError(`answered ${type || 'no content type'}, not JSON`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      response.destroy();
      throw new DocumentFetchError(`is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new DocumentFetchError('is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DocumentFetchError('is not a JSON object');
  return { json: json as Record<string, unknown>, maxAgeSeconds: maxAgeOf(String(response.headers['cache-control'] ?? '')) };
}

function maxAgeOf(cacheControl: string): number | undefined {
  if (/\b(no-store|no-cache)\b/i.test(cacheControl)) return 0;
  const maxAge = /\bmax-age=(\d+)/i.exec(cacheControl)?.[1];
  return maxAge === undefined ? undefined : Number(maxAge);
}
