/**
 * What a client registers for mutual TLS (RFC 8705), and the checks of it (src/oidc/mutual-tls.ts serves it):
 * - `tls_client_auth` (§2.1): what its certificate from a trusted authority must name, exactly one of subject DN
 *   and four kinds of subject alternative name;
 * - `self_signed_tls_client_auth` (§2.2): the certificates it presents, as its JWK Set, each key with its
 *   certificate in `x5c`, whose SHA-256 thumbprint oidc-provider compares with the one presented;
 * - certificate-bound tokens (§3), which cannot also be bound to a DPoP key.
 */
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { InputError } from '../errors.js';

/** Mutual TLS (RFC 8705 §2): a certificate from a trusted authority naming the client, or one it registered. */
export const MUTUAL_TLS_METHODS = ['tls_client_auth', 'self_signed_tls_client_auth'] as const;

/** Mutual TLS on this server (MTLS_CERTIFICATE_HEADER), with authorities for `tls_client_auth` (MTLS_TRUSTED_CA_FILE) or not. */
export interface MutualTlsAvailability {
  trustedAuthorities: boolean;
}

export const CERTIFICATE_BOUND_DESCRIPTION =
  'bind its access tokens (and a public client’s refresh tokens) to the TLS client certificate it presents, which it must (RFC 8705 §3: an API checks `cnf.x5t#S256`); needs MTLS_CERTIFICATE_HEADER; not with requireDpop';
export const ONE_PROOF_OF_POSSESSION = 'a token is bound to one key: a DPoP key or a TLS client certificate, not both';

/**
 * What a `tls_client_auth` client's certificate must name (RFC 8705 §2.1.2), exactly one: its subject DN as RFC
 * 4514 writes it, or one subject alternative name. Kept in `metadata` under the spec's names.
 */
export const tlsSubjectFields = {
  tlsClientAuthSubjectDn: z.string().trim().min(3).max(1000).optional().meta({ description: 'tls_client_auth: the certificate’s subject DN, as RFC 4514 writes it (CN=…,O=…,C=…)' }),
  tlsClientAuthSanDns: z.string().trim().min(1).max(253).optional().meta({ description: 'tls_client_auth: a DNS name among the certificate’s subject alternative names' }),
  tlsClientAuthSanUri: z.url().optional().meta({ description: 'tls_client_auth: a URI among the certificate’s subject alternative names' }),
  tlsClientAuthSanIp: z.union([z.ipv4(), z.ipv6()]).optional().meta({ description: 'tls_client_auth: an IP address among the certificate’s subject alternative names' }),
  tlsClientAuthSanEmail: z.email().optional().meta({ description: 'tls_client_auth: an email address among the certificate’s subject alternative names' }),
};
export const TLS_SUBJECT_METADATA = {
  tlsClientAuthSubjectDn: 'tls_client_auth_subject_dn',
  tlsClientAuthSanDns: 'tls_client_auth_san_dns',
  tlsClientAuthSanUri: 'tls_client_auth_san_uri',
  tlsClientAuthSanIp: 'tls_client_auth_san_ip',
  tlsClientAuthSanEmail: 'tls_client_auth_san_email',
} as const;

/** Why mutual TLS registration settings do not fit together, for each field. */
export function mutualTlsProblems(input: z.output<z.ZodObject<typeof tlsSubjectFields>> & { tokenEndpointAuthMethod?: string; jwks?: { keys: Record<string, unknown>[] }; jwksUri?: string; certificateBoundTokens: boolean; requireDpop: boolean }) {
  const problems: { path: string; message: string }[] = [];
  const named = Object.keys(TLS_SUBJECT_METADATA).filter((field) => input[field as keyof typeof TLS_SUBJECT_METADATA] !== undefined);
  if (input.tokenEndpointAuthMethod === 'tls_client_auth' && named.length !== 1) {
    problems.push({ path: 'tlsClientAuthSubjectDn', message: 'tls_client_auth names what the client’s certificate must say: exactly one of tlsClientAuthSubjectDn, tlsClientAuthSanDns, tlsClientAuthSanUri, tlsClientAuthSanIp, tlsClientAuthSanEmail' });
  }
  if (input.tokenEndpointAuthMethod !== 'tls_client_auth' && named.length > 0) {
    problems.push({ path: named[0] as string, message: 'applies to tokenEndpointAuthMethod tls_client_auth' });
  }
  if (input.tokenEndpointAuthMethod === 'self_signed_tls_client_auth') {
    if (!input.jwks && !input.jwksUri) problems.push({ path: 'jwks', message: 'self_signed_tls_client_auth needs the client’s certificates: jwks (or jwksUri) with each key’s x5c' });
    else if (input.jwks && !input.jwks.keys.some((key) => Array.isArray(key.x5c) && key.x5c.length > 0)) {
      problems.push({ path: 'jwks', message: 'self_signed_tls_client_auth compares the certificate with the keys’ x5c: give each key its certificate there' });
    }
  }
  if (input.certificateBoundTokens && input.requireDpop) problems.push({ path: 'certificateBoundTokens', message: ONE_PROOF_OF_POSSESSION });
  return problems;
}

/**
 * Why this server cannot serve a client that authenticates with `method`, or has certificate-bound tokens (no
 * method): mutual TLS needs the certificate passed on (MTLS_CERTIFICATE_HEADER), `tls_client_auth` authorities too.
 */
export function mutualTlsUnavailable(mutualTls: MutualTlsAvailability | undefined, method?: string): string | undefined {
  if (!mutualTls) return 'mutual TLS is off on this server: set MTLS_CERTIFICATE_HEADER (behind a proxy that asks clients for certificates)';
  if (method === 'tls_client_auth' && !mutualTls.trustedAuthorities) return 'tls_client_auth needs MTLS_TRUSTED_CA_FILE, the authorities whose certificates are trusted';
  return undefined;
}

/** The first reason a new client's mutual TLS settings cannot be served here, naming the field. */
export function mutualTlsRefusal(mutualTls: MutualTlsAvailability | undefined, client: { tokenEndpointAuthMethod?: string; certificateBoundTokens: boolean }): string | undefined {
  const method = client.tokenEndpointAuthMethod;
  const methodProblem = (MUTUAL_TLS_METHODS as readonly string[]).includes(method ?? '') ? mutualTlsUnavailable(mutualTls, method) : undefined;
  if (methodProblem) return `tokenEndpointAuthMethod: ${methodProblem}`;
  const boundProblem = client.certificateBoundTokens ? mutualTlsUnavailable(mutualTls) : undefined;
  return boundProblem && `certificateBoundTokens: ${boundProblem}`;
}

/** A JWK Set of the certificates' public keys, each with its certificate in `x5c` (two during a rollover). */
export function jwksOfCertificates(pems: readonly string[]): { keys: Record<string, unknown>[] } {
  return {
    keys: pems.map((pem, index) => {
      let certificate: X509Certificate;
      try {
        certificate = new X509Certificate(pem);
      } catch {
        throw new InputError(`certificate ${index + 1} is not a PEM certificate ("-----BEGIN CERTIFICATE-----")`);
      }
      return { ...certificate.publicKey.export({ format: 'jwk' }), x5c: [certificate.raw.toString('base64')] };
    }),
  };
}
