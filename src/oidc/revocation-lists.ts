/**
 * Certificate revocation lists for mutual TLS (MTLS_CRL_FILE): a certificate from a trusted authority that its
 * authority has revoked no longer authenticates a `tls_client_auth` client (./mutual-tls.ts). The file holds the
 * authorities' CRLs (PEM, `BEGIN X509 CRL`), each of which must be signed by one of MTLS_TRUSTED_CA_FILE's
 * authorities. It is read again when it changes (looked at with keys/, every KEYS_RESCAN_INTERVAL and on SIGHUP), so
 * a cron job that fetches fresh CRLs needs no restart; a file that cannot be used then is logged and the lists in
 * force are kept.
 *
 * A list past its nextUpdate still counts (what it revokes stays revoked) and is logged as stale at each check:
 * refusing every client of that authority because a download failed would be an outage of its own making.
 *
 * @peculiar/x509 (which @simplewebauthn/server brings anyway) parses the lists; it is loaded only when a CRL
 * file is configured, since its ASN.1 modules cost a process megabytes of memory.
 */
import type { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../config.js';
import type { Logger } from '../logger.js';

/** OpenSSL writes `X509 CRL`, some tools plain `CRL`. */
const PEM_CRL = /-----BEGIN (?:X509 )?CRL-----[^-]+-----END (?:X509 )?CRL-----/g;

/** What one authority has revoked, by serial number as normalized here. */
interface AuthorityList {
  serials: Set<string>;
  nextUpdate: Date | undefined;
}

/** @peculiar/x509, with what it needs first (decorator metadata) and Node's WebCrypto to verify with. */
async function loadX509(): Promise<typeof import('@peculiar/x509')> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(globalThis.crypto);
  return x509;
}

/** A serial number as hex without leading zeros, upper case: Node and @peculiar/x509 write them differently. */
const normalizedSerial = (serial: string) => serial.toUpperCase().replace(/^0+(?=.)/, '');

export class RevocationLists {
  #lists = new Map<string, AuthorityList>();
  #modifiedMs = 0;

  private constructor(
    private readonly file: string,
    private readonly authorities: readonly X509Certificate[],
    private readonly logger: Logger,
  ) {}

  /** Reads `file`; throws a ConfigError saying what is wrong with it (the server does not start). */
  static async open(file: string, authorities: readonly X509Certificate[], logger: Logger): Promise<RevocationLists> {
    const lists = new RevocationLists(file, authorities, logger);
    try {
      await lists.#read((await stat(file)).mtimeMs);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new ConfigError([`MTLS_CRL_FILE: ${file}: ${reason}`]);
    }
    return lists;
  }

  /** Whether `authority` (one of the trusted ones) has revoked `certificate`. */
  revoked(certificate: X509Certificate, authority: X509Certificate): boolean {
    return this.#lists.get(authority.fingerprint256)?.serials.has(normalizedSerial(certificate.serialNumber)) ?? false;
  }

  /** Reads the file again if it changed, else says again which lists are stale; a problem is logged and the lists in force are kept. */
  async recheck(): Promise<void> {
    try {
      const modifiedMs = (await stat(this.file)).mtimeMs;
      if (modifiedMs === this.#modifiedMs) return this.#warnIfStale();
      await this.#read(modifiedMs);
      this.logger.info({ file: this.file, authorities: this.#lists.size }, 'certificate revocation lists read again');
    } catch (error) {
      this.logger.error({ err: error, file: this.file }, 'MTLS_CRL_FILE could not be read again; the revocation lists in force are kept');
    }
  }

  /** Reads the file, last modified at `modifiedMs`, and puts its lists in force once every one of them checked out. */
  async #read(modifiedMs: number): Promise<void> {
    const blocks = (await readFile(this.file, 'utf8')).match(PEM_CRL) ?? [];
    if (blocks.length === 0) throw new Error('it holds no CRL (PEM, "BEGIN X509 CRL")');
    const x509 = await loadX509();
    const lists = new Map<string, AuthorityList>();
    for (const [index, block] of blocks.entries()) {
      const crl = new x509.X509Crl(block);
      const authority = await this.#signerOf(crl, x509);
      if (!authority) throw new Error(`CRL ${index + 1} (issuer ${crl.issuer}) is signed by none of the authorities in MTLS_TRUSTED_CA_FILE`);
      lists.set(authority.fingerprint256, { serials: new Set(crl.entries.map((entry) => normalizedSerial(entry.serialNumber))), nextUpdate: crl.nextUpdate });
    }
    this.#lists = lists;
    this.#modifiedMs = modifiedMs;
    this.#warnIfStale();
  }

  async #signerOf(crl: import('@peculiar/x509').X509Crl, x509: typeof import('@peculiar/x509')): Promise<X509Certificate | undefined> {
    for (const authority of this.authorities) {
      const issuer = new x509.X509Certificate(authority.raw);
      if (await crl.verify({ publicKey: issuer }).catch(() => false)) return authority;
    }
    return undefined;
  }

  /** Logs the lists past their nextUpdate: the CA has published a newer one, which the file should hold. */
  #warnIfStale(): void {
    const now = new Date();
    for (const [authority, list] of this.#lists) {
      if (list.nextUpdate && list.nextUpdate < now) {
        this.logger.warn({ file: this.file, authority, nextUpdate: list.nextUpdate.toISOString() }, 'a certificate revocation list is past its nextUpdate: fetch a fresh one into MTLS_CRL_FILE');
      }
    }
  }
}
