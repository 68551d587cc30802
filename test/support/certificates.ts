/**
 * X.509 certificates for mutual TLS tests, made with @peculiar/x509 on WebCrypto: a certificate authority that
 * issues client certificates, and self-signed ones. Names are given in the certificate's own order
 * (`C=…, O=…, CN=…`); RFC 4514 writes them the other way round (`CN=…,O=…,C=…`).
 */
import 'reflect-metadata';
import { createHash, type webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const HOUR = 3_600_000;

export interface TestCertificate {
  pem: string;
  /** Its SHA-256 thumbprint as RFC 8705 §3.1 puts it in `cnf.x5t#S256`. */
  thumbprint: string;
}

export interface AlternativeNames {
  dns?: string;
  ip?: string;
  email?: string;
  uri?: string;
}

export interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

let serial = 1;
const nextSerial = () => (serial++).toString(16).padStart(2, '0');
const newKeys = () => crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
const validity = (given: Validity) => ({ notBefore: given.notBefore ?? new Date(Date.now() - HOUR), notAfter: given.notAfter ?? new Date(Date.now() + 24 * HOUR) });

function described(certificate: x509.X509Certificate): TestCertificate {
  return { pem: certificate.toString('pem'), thumbprint: createHash('sha256').update(Buffer.from(certificate.rawData)).digest('base64url') };
}

function alternativeNamesExtension(names: AlternativeNames): x509.Extension[] {
  const entries: x509.JsonGeneralName[] = [];
  if (names.dns) entries.push({ type: 'dns', value: names.dns });
  if (names.ip) entries.push({ type: 'ip', value: names.ip });
  if (names.email) entries.push({ type: 'email', value: names.email });
  if (names.uri) entries.push({ type: 'url', value: names.uri });
  return entries.length > 0 ? [new x509.SubjectAlternativeNameExtension(entries)] : [];
}

export interface CertificateAuthority {
  certificate: TestCertificate;
  issue(subject: string, names?: AlternativeNames, dates?: Validity): Promise<TestCertificate>;
  /** Its certificate revocation list (PEM) revoking `revoked`, next updated at `nextUpdate` (default: in a day). */
  revocationList(revoked: readonly TestCertificate[], nextUpdate?: Date): Promise<string>;
}

export async function certificateAuthority(name: string): Promise<CertificateAuthority> {
  const keys = await newKeys();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name,
    ...validity({}),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return {
    certificate: described(root),
    async issue(subject, names = {}, dates = {}) {
      const client = await newKeys();
      const issued = await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(),
        subject,
        issuer: root.subject,
        ...validity(dates),
        signingAlgorithm: ALGORITHM,
        publicKey: client.publicKey,
        signingKey: keys.privateKey,
        extensions: alternativeNamesExtension(names),
      });
      return described(issued);
    },
    async revocationList(revoked, nextUpdate = new Date(Date.now() + 24 * HOUR)) {
      const crl = await x509.X509CrlGenerator.create({
        issuer: root.subject,
        thisUpdate: new Date(Date.now() - HOUR),
        nextUpdate,
        entries: revoked.map((certificate) => ({ serialNumber: new x509.X509Certificate(certificate.pem).serialNumber, revocationDate: new Date(Date.now() - HOUR) })),
        signingAlgorithm: ALGORITHM,
        signingKey: keys.privateKey,
      });
      return crl.toString('pem');
    },
  };
}

export async function selfSignedCertificate(name: string): Promise<TestCertificate> {
  const keys = await newKeys();
  return described(await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: nextSerial(), name, ...validity({}), signingAlgorithm: ALGORITHM, keys }));
}
