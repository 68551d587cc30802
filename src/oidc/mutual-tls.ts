/**
 * Mutual TLS (RFC 8705) behind a TLS-terminating proxy, which is where this server always runs: the proxy asks
 * the client for a certificate and passes it on in a request header (MTLS_CERTIFICATE_HEADER, trusted only with
 * PROXY), and oidc-provider's mTLS feature does the protocol with the three hooks made here:
 *
 * - `getCertificate`: the header's certificate, in any of the forms proxies write it (below);
 * - `certificateAuthorized` (`tls_client_auth`, §2.1): the certificate is valid now and was issued by one of the
 *   certificate authorities in MTLS_TRUSTED_CA_FILE;
 * - `certificateSubjectMatches`: the certificate names what the client registered, as its subject DN (RFC 4514)
 *   or as one subject alternative name (DNS, URI, IP address or email).
 *
 * `self_signed_tls_client_auth` (§2.2) and certificate-bound access tokens (§3) need only the certificate: the
 * library compares its SHA-256 thumbprint with the client's registered keys (`x5c`), or binds the token to it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { RevocationLists } from './revocation-lists.js';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Envoy's X-Forwarded-Client-Cert: `Hash=…;Cert="<URL-encoded PEM>";…`, the first element the client's. */
const ENVOY_CERT = /(?:^|;)\s*Cert="([^"]*)"/i;

/**
 * The certificate a proxy put in a header, or undefined when there is none or it is not one. Proxies write it
 * URL-encoded (nginx's `$ssl_client_escaped_cert`, AWS ALB, Traefik), as PEM with its line breaks turned into
 * spaces or tabs (nginx's `$ssl_client_cert`, Apache's `SSL_CLIENT_CERT`), as bare base64 DER (Caddy, Traefik),
 * or inside Envoy's `X-Forwarded-Client-Cert`. Of a chain, the first certificate is the client's.
 */
export function certificateFromHeader(value: string | string[] | undefined): X509Certificate | undefined {
  let text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  text = ENVOY_CERT.exec(text)?.[1] ?? text;
  if (text.includes('%')) {
    try {
      text = decodeURIComponent(text);
    } catch {
      return undefined;
    }
  }
  const base64 = (PEM_CERTIFICATE.exec(text)?.[1] ?? text).replace(/\s+/g, '');
  if (!BASE64.test(base64)) return undefined;
  try {
    return new X509Certificate(Buffer.from(base64, 'base64'));
  } catch {
    return undefined;
  }
}

/** The certificate authorities of a PEM bundle (MTLS_TRUSTED_CA_FILE); throws when it holds none. */
export function readTrustedAuthorities(file: string): X509Certificate[] {
  const blocks = readFileSync(file, 'utf8').match(new RegExp(PEM_CERTIFICATE.source, 'g')) ?? [];
  const authorities = blocks.map((block) => new X509Certificate(block)).filter((certificate) => certificate.ca);
  if (authorities.length === 0) throw new Error('it holds no CA certificate (PEM, "BEGIN CERTIFICATE", with basicConstraints CA:TRUE)');
  return authorities;
}

/** The one of `authorities` that issued and signed `certificate`, both valid at `now`; undefined for none. */
export function issuingAuthority(certificate: X509Certificate, authorities: readonly X509Certificate[], now = new Date()): X509Certificate | undefined {
  if (!validAt(certificate, now)) return undefined;
  return authorities.find((authority) => validAt(authority, now) && certificate.checkIssued(authority) && certificate.verify(authority.publicKey));
}

const validAt = (certificate: X509Certificate, now: Date) => certificate.validFromDate <= now && now <= certificate.validToDate;

/**
 * Whether the certificate names `expected` as the registered `property` says it should (RFC 8705 §2.1.2's client
 * metadata: src/clients/client-certificates.ts).
 */
export function subjectMatches(certificate: X509Certificate, property: string, expected: string): boolean {
  switch (property) {
    case 'tls_client_auth_subject_dn':
      return sameDistinguishedName(certificate.subject, expected);
    case 'tls_client_auth_san_dns':
      return alternativeNames(certificate, 'DNS').some((name) => name.toLowerCase() === expected.toLowerCase());
    case 'tls_client_auth_san_uri':
      return alternativeNames(certificate, 'URI').includes(expected);
    case 'tls_client_auth_san_ip':
      return alternativeNames(certificate, 'IP Address').some((address) => sameIpAddress(address, expected));
    case 'tls_client_auth_san_email':
      return alternativeNames(certificate, 'email').some((address) => address.toLowerCase() === expected.toLowerCase());
    default:
      return false;
  }
}

/**
 * Node writes a certificate's subject one attribute a line, in the certificate's order (`C=…`, `O=…`, `CN=…`);
 * RFC 4514 writes it the other way round, comma-separated (`CN=…,O=…,C=…`), with `\` escapes. Attribute types
 * are compared without case, values without case and with runs of spaces as one (as X.520's caseIgnoreMatch).
 */
function sameDistinguishedName(subject: string, expected: string): boolean {
  const ours = subject.split('\n').filter(Boolean).map(normalAttribute).reverse();
  const theirs = splitUnescaped(expected, /[,+]/).map(normalAttribute);
  return ours.length === theirs.length && ours.every((attribute, index) => attribute === theirs[index]);
}

/** Long names RFC 4514 and OpenSSL both read, as OpenSSL writes them short. */
const ATTRIBUTE_ALIASES: Record<string, string> = {
  COMMONNAME: 'CN',
  ORGANIZATIONNAME: 'O',
  ORGANIZATIONALUNITNAME: 'OU',
  COUNTRYNAME: 'C',
  LOCALITYNAME: 'L',
  STATEORPROVINCENAME: 'ST',
  S: 'ST',
  E: 'EMAILADDRESS',
  STREETADDRESS: 'STREET',
  DOMAINCOMPONENT: 'DC',
};

function normalAttribute(attribute: string): string {
  const equals = attribute.indexOf('=');
  const type = attribute.slice(0, equals).trim().toUpperCase();
  const value = unescapeDnValue(attribute.slice(equals + 1).trim());
  return `${ATTRIBUTE_ALIASES[type] ?? type}=${value.replace(/\s+/g, ' ').toLowerCase()}`;
}

/** `text` split at the separators not escaped with a backslash. */
function splitUnescaped(text: string, separator: RegExp): string[] {
  const parts: string[] = [];
  let current = '';
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index] as string;
    if (character === '\\' && index + 1 < text.length) {
      current += character + text[index + 1];
      index += 1;
    } else if (separator.test(character)) {
      parts.push(current);
      current = '';
    } else {
      current += character;
    }
  }
  parts.push(current);
  return parts.filter((part) => part.trim() !== '');
}

/** RFC 4514 §2.4's escapes: a backslash before a special character, or two hex digits of a UTF-8 byte. */
function unescapeDnValue(value: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < value.length; index += 1) {
    const hex = value[index] === '\\' ? /^[0-9A-Fa-f]{2}/.exec(value.slice(index + 1)) : null;
    if (hex) {
      bytes.push(Number.parseInt(hex[0], 16));
      index += 2;
    } else {
      const character = value[index] === '\\' && index + 1 < value.length ? value[++index] : value[index];
      bytes.push(...Buffer.from(character as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The certificate's subject alternative names of one kind. Node lists them as `DNS:a.example, IP Address:…`,
 * quoting (as JSON strings) a name that holds a comma or a quote.
 */
function alternativeNames(certificate: X509Certificate, kind: string): string[] {
  const names: string[] = [];
  for (const match of (certificate.subjectAltName ?? '').matchAll(/(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    if (match[1] !== kind) continue;
    const raw = match[2] as string;
    names.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return names;
}

/** IP addresses compared as addresses: `::1` and `0:0:0:0:0:0:0:1` are one. */
function sameIpAddress(left: string, right: string): boolean {
  const canonical = (address: string) => URL.parse(`http://${address.includes(':') ? `[${address}]` : address}/`)?.hostname;
  const ours = canonical(left);
  return ours !== undefined && ours === canonical(right);
}

/** The client authentication methods mutual TLS adds: `tls_client_auth` only with authorities to trust. */
export function mutualTlsAuthMethods(mutualTls: { trustedAuthorities: readonly X509Certificate[] } | undefined): ('tls_client_auth' | 'self_signed_tls_client_auth')[] {
  if (!mutualTls) return [];
  return mutualTls.trustedAuthorities.length > 0 ? ['tls_client_auth', 'self_signed_tls_client_auth'] : ['self_signed_tls_client_auth'];
}

/** The request's client certificate, read from the header once per request. */
const certificates = new WeakMap<object, X509Certificate | undefined>();

/**
 * oidc-provider's `features.mTLS`, reading the certificate from `header` and trusting `authorities` (none: no
 * `tls_client_auth`), less the certificates they revoked (MTLS_CRL_FILE, ./revocation-lists.ts).
 */
export function mutualTlsFeature(header: string, authorities: readonly X509Certificate[], revocations?: RevocationLists) {
  const certificateOf = (ctx: KoaContextWithOIDC): X509Certificate | undefined => {
    if (!certificates.has(ctx)) certificates.set(ctx, certificateFromHeader(ctx.get(header) || undefined));
    return certificates.get(ctx);
  };
  return {
    enabled: true,
    certificateBoundAccessTokens: true,
    selfSignedTlsClientAuth: true,
    tlsClientAuth: authorities.length > 0,
    // The library takes an X509Certificate as well as PEM text (lib/helpers/certificate_thumbprint.js).
    getCertificate: (ctx: KoaContextWithOIDC) => certificateOf(ctx) as unknown as string | undefined,
    certificateAuthorized: (ctx: KoaContextWithOIDC) => {
      const certificate = certificateOf(ctx);
      const authority = certificate && issuingAuthority(certificate, authorities);
      return authority !== undefined && !revocations?.revoked(certificate as X509Certificate, authority);
    },
    certificateSubjectMatches: (ctx: KoaContextWithOIDC, property: string, expected: string) => {
      const certificate = certificateOf(ctx);
      return certificate !== undefined && subjectMatches(certificate, property, expected);
    },
  };
}

/**
 * The endpoints a client authenticates at or presents its token to, as oidc-provider serves them (its default
 * routes, under the issuer), each at `base`: RFC 8705 §5's `mtls_endpoint_aliases`, for a deployment whose proxy
 * asks for certificates on a host of their own (MTLS_ENDPOINTS_URL) rather than on the issuer's, where browsers
 * would be asked too. The same server answers there: the proxy sends both hosts to it.
 */
export function mtlsEndpointAliases(base: string): Record<string, string> {
  const routes: Record<string, string> = {
    token_endpoint: '/token',
    revocation_endpoint: '/token/revocation',
    introspection_endpoint: '/token/introspection',
    userinfo_endpoint: '/me',
    device_authorization_endpoint: '/device/auth',
    pushed_authorization_request_endpoint: '/request',
  };
  return Object.fromEntries(Object.entries(routes).map(([name, route]) => [name, `${base}${route}`]));
}
