/**
 * Reading the client certificate a proxy passes on, in each form proxies write it, and comparing it with what a
 * `tls_client_auth` client registered (RFC 8705 §2.1.2). Over HTTP in test/e2e/mutual-tls.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { certificateFromHeader, issuingAuthority, subjectMatches } from '../../src/oidc/mutual-tls.js';
import { type CertificateAuthority, type TestCertificate, certificateAuthority, selfSignedCertificate } from '../support/certificates.js';

let authority: CertificateAuthority;
let client: TestCertificate;

beforeAll(async () => {
  authority = await certificateAuthority('C=DE, O=Example, CN=Clients CA');
  client = await authority.issue('C=DE, O=Example, OU=Billing, CN=nightly\\, batch', { dns: 'billing.example.test', ip: '2001:db8::7', email: 'ops@example.test', uri: 'spiffe://example.test/billing' });
});

const fingerprintOf = (certificate: X509Certificate | undefined) => certificate?.fingerprint256;

describe('the certificate in the header', () => {
  test('is read as nginx, Apache, AWS ALB, Traefik, Caddy and Envoy write it', () => {
    const expected = new X509Certificate(client.pem).fingerprint256;
    const body = client.pem.replace(/-----[A-Z ]+-----|\s/g, '');
    const forms = [
      encodeURIComponent(client.pem), // nginx $ssl_client_escaped_cert, AWS ALB
      client.pem.replace(/\n/g, ' '), // PEM with its line breaks as spaces (Apache)
      client.pem.trim().replace(/\n/g, '\n\t'), // nginx's old $ssl_client_cert: continuation lines begin with a tab
      body, // bare base64 DER (Caddy)
      encodeURIComponent(body), // Traefik
      `Hash=abc;Cert="${encodeURIComponent(client.pem)}";Subject="CN=nightly"`, // Envoy X-Forwarded-Client-Cert
      `${client.pem}${authority.certificate.pem}`, // a chain: the first is the client's
    ];
    for (const form of forms) expect(fingerprintOf(certificateFromHeader(form))).toBe(expected);
  });

  test('none, an empty value or anything that is not a certificate is no certificate', () => {
    for (const value of [undefined, '', '   ', '(null)', '%E0%A4%A', 'aGVsbG8=', '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----', ['', 'x']]) {
      expect(certificateFromHeader(value)).toBeUndefined();
    }
  });
});

describe('tls_client_auth', () => {
  test('trusts a certificate issued by a trusted authority while it is valid; not a self-signed one, another authority’s or an expired one', async () => {
    const trusted = [new X509Certificate(authority.certificate.pem)];
    expect(issuingAuthority(new X509Certificate(client.pem), trusted)).toBe(trusted[0]);
    expect(issuingAuthority(new X509Certificate(client.pem), trusted, new Date(Date.now() + 30 * 86_400_000))).toBeUndefined();
    const impostor = await certificateAuthority('C=DE, O=Example, CN=Clients CA');
    expect(issuingAuthority(new X509Certificate((await impostor.issue('CN=nightly')).pem), trusted)).toBeUndefined();
    expect(issuingAuthority(new X509Certificate((await selfSignedCertificate('C=DE, O=Example, CN=Clients CA')).pem), trusted)).toBeUndefined();
  });

  test('matches the subject DN as RFC 4514 writes it: reversed, escapes read, types and values without case', () => {
    const certificate = new X509Certificate(client.pem);
    const same = ['CN=nightly\\, batch,OU=Billing,O=Example,C=DE', 'cn=Nightly\\2C  Batch, ou=billing, o=EXAMPLE, c=de', 'commonName=nightly\\, batch,OU=Billing,organizationName=Example,C=DE'];
    for (const dn of same) expect(subjectMatches(certificate, 'tls_client_auth_subject_dn', dn)).toBe(true);
    const other = ['C=DE,O=Example,OU=Billing,CN=nightly\\, batch', 'CN=nightly,OU=Billing,O=Example,C=DE', 'CN=nightly\\, batch,O=Example,C=DE', 'CN=nightly\\, batch,OU=Billing,O=Example,C=DE,DC=x'];
    for (const dn of other) expect(subjectMatches(certificate, 'tls_client_auth_subject_dn', dn)).toBe(false);
  });

  test('matches one subject alternative name of the kind registered', () => {
    const certificate = new X509Certificate(client.pem);
    expect(subjectMatches(certificate, 'tls_client_auth_san_dns', 'Billing.Example.Test')).toBe(true);
    expect(subjectMatches(certificate, 'tls_client_auth_san_ip', '2001:0db8:0:0:0:0:0:7')).toBe(true);
    expect(subjectMatches(certificate, 'tls_client_auth_san_email', 'ops@example.test')).toBe(true);
    expect(subjectMatches(certificate, 'tls_client_auth_san_uri', 'spiffe://example.test/billing')).toBe(true);
    expect(subjectMatches(certificate, 'tls_client_auth_san_dns', 'example.test')).toBe(false);
    expect(subjectMatches(certificate, 'tls_client_auth_san_dns', 'ops@example.test')).toBe(false);
    expect(subjectMatches(certificate, 'tls_client_auth_san_ip', '2001:db8::8')).toBe(false);
    expect(subjectMatches(certificate, 'tls_client_auth_san_uri', 'spiffe://example.test/billing/')).toBe(false);
    expect(subjectMatches(certificate, 'something_else', 'billing.example.test')).toBe(false);
  });
});
