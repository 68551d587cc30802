/**
 * The certificates a `self_signed_tls_client_auth` client presents (RFC 8705 §2.2) are registered as its JWK Set:
 * each certificate's public key, with the certificate itself in `x5c`, whose SHA-256 thumbprint oidc-provider
 * compares with the one presented. Two during a rollover.
 */
import { X509Certificate } from 'node:crypto';
import { InputError } from '../errors.js';

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
