/**
 * A passkey held in software, for tests over HTTP: a P-256 key pair that answers WebAuthn ceremonies as an
 * authenticator would, producing the JSON a browser posts (the shape @simplewebauthn/browser makes). Registration
 * carries "none" attestation, as browsers send when none is asked for. Every byte is built here by hand (CBOR,
 * COSE, authenticator data), from the WebAuthn Level 3 layouts, so the server's checks meet a credential it did
 * not make itself. Options make it misbehave: no user verification, another origin, a counter that goes back.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const FLAG_USER_PRESENT = 0x01;
const FLAG_USER_VERIFIED = 0x04;
const FLAG_BACKUP_ELIGIBLE = 0x08;
const FLAG_BACKED_UP = 0x10;
const FLAG_ATTESTED_CREDENTIAL = 0x40;

const b64url = (bytes: Buffer) => bytes.toString('base64url');

/** CBOR: a byte string's or text string's head (major type 2 or 3) for `length` bytes. */
function cborHead(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 256) return Buffer.from([(major << 5) | 24, length]);
  const head = Buffer.alloc(3);
  head[0] = (major << 5) | 25;
  head.writeUInt16BE(length, 1);
  return head;
}
const cborText = (text: string) => Buffer.concat([cborHead(3, Buffer.byteLength(text)), Buffer.from(text)]);
const cborBytes = (bytes: Buffer) => Buffer.concat([cborHead(2, bytes.length), bytes]);

export interface CeremonyOptions {
  /** The challenge from the server's options (base64url). */
  challenge: string;
  /** Leave out user verification (a key without a PIN, or one not asked for it). */
  unverified?: boolean;
  /** The page's origin, if not the issuer's. */
  origin?: string;
  /** The RP ID the authenticator signs for, if not the issuer's host. */
  rpId?: string;
}

export class SoftwarePasskey {
  /** The credential id, base64url: a new one, unless `options.id` claims another's. */
  readonly id: string;
  readonly #keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  /** The signature counter; stays 0 unless `counting` (as most synced passkeys do). */
  counter = 0;

  constructor(
    /** The account id the server gave as the user handle. */
    readonly userId: string,
    readonly origin: string,
    readonly options: { counting?: boolean; synced?: boolean; id?: string; aaguid?: string } = {},
  ) {
    this.id = options.id ?? b64url(randomBytes(16));
  }

  /** The public key as COSE (RFC 9053 EC2, ES256): the map {1: 2, 3: -7, -1: 1, -2: x, -3: y}. */
  coseKey(): Buffer {
    const jwk = this.#keys.publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x as string, 'base64url');
    const y = Buffer.from(jwk.y as string, 'base64url');
    return Buffer.concat([Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]), cborBytes(x), Buffer.from([0x22]), cborBytes(y)]);
  }

  #authenticatorData(rpId: string, flags: number, attested?: Buffer): Buffer {
    if (this.options.counting) this.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter);
    const backup = this.options.synced ? FLAG_BACKUP_ELIGIBLE | FLAG_BACKED_UP : 0;
    return Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.from([flags | backup]), counter, ...(attested ? [attested] : [])]);
  }

  #clientData(type: 'webauthn.create' | 'webauthn.get', ceremony: CeremonyOptions): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge: ceremony.challenge, origin: ceremony.origin ?? this.origin, crossOrigin: false }));
  }

  #flags(ceremony: CeremonyOptions, extra = 0): number {
    return FLAG_USER_PRESENT | (ceremony.unverified ? 0 : FLAG_USER_VERIFIED) | extra;
  }

  /** The browser's answer to navigator.credentials.create() with the server's options. */
  attestation(ceremony: CeremonyOptions): Record<string, unknown> {
    const rpId = ceremony.rpId ?? new URL(this.origin).hostname;
    const credentialId = Buffer.from(this.id, 'base64url');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(credentialId.length);
    // The AAGUID says what make of authenticator this is; all zeros says nothing (as browsers may send it).
    const aaguid = this.options.aaguid ? Buffer.from(this.options.aaguid.replaceAll('-', ''), 'hex') : Buffer.alloc(16);
    const attested = Buffer.concat([aaguid, length, credentialId, this.coseKey()]);
    const authData = this.#authenticatorData(rpId, this.#flags(ceremony, FLAG_ATTESTED_CREDENTIAL), attested);
    const attestationObject = Buffer.concat([Buffer.from([0xa3]), cborText('fmt'), cborText('none'), cborText('attStmt'), Buffer.from([0xa0]), cborText('authData'), cborBytes(authData)]);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64url(this.#clientData('webauthn.create', ceremony)), attestationObject: b64url(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** The browser's answer to navigator.credentials.get() with the server's options. */
  assertion(ceremony: CeremonyOptions): Record<string, unknown> {
    const rpId = ceremony.rpId ?? new URL(this.origin).hostname;
    const authData = this.#authenticatorData(rpId, this.#flags(ceremony));
    const clientData = this.#clientData('webauthn.get', ceremony);
    const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientData).digest()]), this.#keys.privateKey);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientData),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: b64url(Buffer.from(this.userId)),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}
