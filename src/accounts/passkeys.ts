/**
 * Passkeys: WebAuthn credentials a user registers on the account page (src/self-service/passkeys.ts) and signs in
 * with from the login page (src/interaction/passkey-sign-in.ts), without a password. @simplewebauthn/server does
 * the WebAuthn checks (origin, RP ID, challenge, signature, user verification, counter); this module keeps the
 * credentials (`passkeys`, migration 0010) and the rules around them:
 *
 * - Every passkey is discoverable (a "resident key") and every ceremony requires user verification (a PIN,
 *   fingerprint or face on the authenticator), so a passkey alone is two factors: something held and something
 *   known or been. Its sign-in carries `amr` [hwk or swk, user, mfa] (RFC 8176) and the two-step `acr`.
 * - The RP ID is the issuer's host name, and the only origin accepted is the issuer's. A host that is an IP
 *   address cannot have passkeys (WebAuthn needs a domain), so they are not offered there.
 * - Attestation is not asked for ("none"): which make of authenticator someone uses is theirs to choose, as with
 *   Keycloak's default WebAuthn policy.
 * - The user handle given to authenticators is the account's id, never its email, so it tells nothing.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { AuditSink } from '../audit/audit-log.js';
import { authenticatorName } from './authenticator-names.js';
import type { Database } from '../store/database.js';

/**
 * @simplewebauthn/server, loaded at the first ceremony: with its ASN.1 and CBOR dependencies it adds 26–28 MB to a
 * process's RSS (a bare import, measured with process.memoryUsage()), which a worker whose users never use a
 * passkey should not carry (the benchmark's RSS line is 150 MB a worker).
 */
let library: Promise<typeof import('@simplewebauthn/server')> | undefined;
const webauthn = () => {
  library ??= import('@simplewebauthn/server');
  return library;
};

/** How long a browser has to complete a ceremony once it has its options: the person may have to find a key. */
export const CEREMONY_TIMEOUT_MS = 5 * 60 * 1000;

/** Passkeys one account may hold: plenty for every device someone owns, and a bound on what a page lists. */
export const MAX_PASSKEYS_PER_USER = 20;

export interface Passkey {
  /** The credential id, base64url: what the account page and the admin API name a passkey by. */
  id: string;
  userId: string;
  name: string;
  /** Synced between devices (a password manager, a platform keychain) rather than bound to one authenticator. */
  backedUp: boolean;
  /** The make of authenticator, from its AAGUID (./authenticator-names.ts); null when it did not say or is not known. */
  authenticator: string | null;
  aaguid: string | null;
  transports: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
}

interface PasskeyRow {
  credential_id: string;
  user_id: string;
  name: string;
  public_key: Buffer;
  sign_count: string | number;
  backed_up: boolean;
  transports: string[];
  aaguid: string | null;
  created_at: Date;
  last_used_at: Date | null;
}

/** What administrators are shown of a passkey (admin API, CLI): what it is called and how it is used, not its key. */
export const passkeyView = ({ id, name, backedUp, authenticator, aaguid, transports, createdAt, lastUsedAt }: Passkey) => ({
  id,
  name,
  synced: backedUp,
  authenticator,
  aaguid,
  transports,
  createdAt,
  lastUsedAt,
});

const toPasskey = (row: PasskeyRow): Passkey => ({
  id: row.credential_id,
  userId: row.user_id,
  name: row.name,
  backedUp: row.backed_up,
  authenticator: authenticatorName(row.aaguid) ?? null,
  aaguid: row.aaguid,
  transports: row.transports ?? [],
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

/** A new passkey whose answer was checked, before it is kept for an account. */
export type CheckedPasskey = Omit<PasskeyRow, 'user_id' | 'created_at' | 'last_used_at'>;

/** base64url, as every binary field of a credential's JSON is. */
const base64url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/);

/** The JSON a browser sends back from navigator.credentials (the shape @simplewebauthn/browser produces). */
const credentialJson = <Response extends z.ZodType>(response: Response) =>
  z.object({
    // WebAuthn caps a credential id at 1,023 bytes: 1,364 characters of base64url.
    id: base64url(1400),
    rawId: base64url(1400),
    type: z.literal('public-key'),
    response,
    clientExtensionResults: z.record(z.string(), z.unknown()).optional().default({}),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  });

const registrationJson = credentialJson(
  z.object({
    clientDataJSON: base64url(8192),
    attestationObject: base64url(32768),
    transports: z.array(z.string().max(32)).max(10).optional(),
  }),
);

const authenticationJson = credentialJson(
  z.object({
    clientDataJSON: base64url(8192),
    authenticatorData: base64url(8192),
    // An RS256 signature of a 4,096-bit key is 683 characters, and authenticators may use larger.
    signature: base64url(8192),
    userHandle: base64url(128).optional(),
  }),
);

/** The browser's answer, parsed from a form field; undefined when it is not such a credential at all. */
function parseCredential<Schema extends z.ZodType>(schema: Schema, field: unknown): z.infer<Schema> | undefined {
  if (typeof field !== 'string' || field.length > 64 * 1024) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(field));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** What the pages say when the form carried no credential at all. */
export const NO_PASSKEY = 'Your browser did not send a passkey. Try again.';
/** Removed from its account, or registered on another server: the authenticator still offers it. */
const UNKNOWN_PASSKEY = 'That passkey is not registered for an account here. Sign in with your password instead.';

/** Why a ceremony's answer was refused, in words for the page; `reason` is for the audit log. */
export interface PasskeyRefusal {
  refused: string;
  reason: string;
  /** The account whose passkey it claimed to be, when that passkey is kept here. */
  userId?: string;
}

/** Who a passkey sign-in proved, and how (`amr`). */
export interface PasskeySignIn {
  userId: string;
  passkey: Passkey;
  amr: string[];
}

/** `amr` of a passkey sign-in: a synced passkey is a software-held key (RFC 8176 `swk`), a device-bound one `hwk`. */
export const passkeyAmr = (backedUp: boolean): string[] => [backedUp ? 'swk' : 'hwk', 'user', 'mfa'];

export class Passkeys {
  readonly rpId: string;
  readonly origin: string;
  /** False where WebAuthn cannot work: an issuer whose host is an IP address. */
  readonly available: boolean;

  constructor(
    private readonly db: Database,
    issuer: string,
    /** Where removals are audited, and who they are attributed to unless the caller says (`self` on the account page). */
    private readonly audited: { audit?: AuditSink; actor?: string } = {},
  ) {
    const url = new URL(issuer);
    this.rpId = url.hostname;
    this.origin = url.origin;
    this.available = isIP(url.hostname.replace(/^\[|\]$/g, '')) === 0;
  }

  async list(userId: string, db: Database = this.db): Promise<Passkey[]> {
    const rows = await db<PasskeyRow>('passkeys').where({ user_id: userId }).orderBy('created_at');
    return rows.map(toPasskey);
  }

  /** Removes one of the user's passkeys, audited `passkey_removed`; undefined when it was not theirs or is gone already. */
  async remove(userId: string, id: string, by = this.audited.actor, db: Database = this.db): Promise<Passkey | undefined> {
    if (id.length > 1400) return undefined;
    const [row] = await db<PasskeyRow>('passkeys').where({ user_id: userId, credential_id: id }).del().returning('*');
    if (!row) return undefined;
    this.#recordRemoval(row as PasskeyRow, by);
    return toPasskey(row as PasskeyRow);
  }

  /** Gives one of the user's passkeys a new name; undefined when it was not theirs or is gone. */
  async rename(userId: string, id: string, name: string): Promise<Passkey | undefined> {
    if (id.length > 1400) return undefined;
    const [row] = await this.db<PasskeyRow>('passkeys').where({ user_id: userId, credential_id: id }).update({ name }).returning('*');
    return row && toPasskey(row as PasskeyRow);
  }

  /** Removes every passkey of the user (a password reset after someone else may have added one); how many. */
  async removeAll(userId: string, by = this.audited.actor): Promise<number> {
    const rows = (await this.db<PasskeyRow>('passkeys').where({ user_id: userId }).del().returning('*')) as PasskeyRow[];
    for (const row of rows) this.#recordRemoval(row, by);
    return rows.length;
  }

  #recordRemoval(row: PasskeyRow, by: string | undefined): void {
    this.audited.audit?.record({ type: 'passkey_removed', outcome: 'success', accountId: row.user_id, detail: { by, passkey: row.name } });
  }

  /** The options for navigator.credentials.create(): a new passkey for this user, none of theirs again. */
  async creationOptions(user: { id: string; email: string; name: string | null }, challenge: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const [existing, { generateRegistrationOptions }] = await Promise.all([this.list(user.id), webauthn()]);
    return generateRegistrationOptions({
      rpName: this.rpId,
      rpID: this.rpId,
      userName: user.email,
      userDisplayName: user.name ?? user.email,
      userID: Buffer.from(user.id),
      // As bytes: a string would be taken as text and encoded again, so the browser would sign another value.
      challenge: Buffer.from(challenge, 'base64url'),
      timeout: CEREMONY_TIMEOUT_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((passkey) => ({ id: passkey.id, transports: passkey.transports as AuthenticatorTransport[] })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
  }

  /**
   * Checks the browser's answer to `creationOptions` and keeps the new passkey under `name`; without one, under its
   * authenticator's name ("Google Password Manager"), or "Passkey" when that is not known.
   */
  async register(user: { id: string }, answer: { credential: unknown; challenge: string; name?: string }): Promise<Passkey | PasskeyRefusal> {
    if ((await this.list(user.id)).length >= MAX_PASSKEYS_PER_USER) {
      return { refused: `You have ${MAX_PASSKEYS_PER_USER} passkeys, the most an account can have. Remove one first.`, reason: 'too_many' };
    }
    const checked = await this.checkRegistration(answer);
    return 'refused' in checked ? checked : this.keep(this.db, user.id, checked);
  }

  /**
   * Checks the browser's answer to `creationOptions`: the passkey to keep, not kept yet (an account registering
   * with it is made in the same transaction: src/interaction/passkey-registration.ts).
   */
  async checkRegistration(answer: { credential: unknown; challenge: string; name?: string }): Promise<CheckedPasskey | PasskeyRefusal> {
    const credential = parseCredential(registrationJson, answer.credential);
    if (!credential) return { refused: NO_PASSKEY, reason: 'malformed' };
    const { verifyRegistrationResponse } = await webauthn();
    const verified = await verifyRegistrationResponse({
      response: credential as RegistrationResponseJSON,
      expectedChallenge: answer.challenge,
      expectedOrigin: this.origin,
      expectedRPID: this.rpId,
      requireUserVerification: true,
    }).catch((error: Error) => ({ verified: false as const, error }));
    if (!verified.verified || !verified.registrationInfo) {
      return { refused: 'The passkey could not be checked. Try again, or use another authenticator.', reason: refusalReason(verified) };
    }
    const info = verified.registrationInfo;
    return {
      credential_id: info.credential.id,
      name: answer.name || (authenticatorName(info.aaguid) ?? 'Passkey'),
      public_key: Buffer.from(info.credential.publicKey),
      sign_count: info.credential.counter,
      backed_up: info.credentialBackedUp,
      transports: info.credential.transports ?? [],
      aaguid: info.aaguid,
    };
  }

  /** Keeps a checked passkey for the user, through `db` (a transaction, or the store). */
  async keep(db: Database, userId: string, passkey: CheckedPasskey): Promise<Passkey | PasskeyRefusal> {
    const [inserted] = await db<PasskeyRow>('passkeys').insert({ ...passkey, user_id: userId }).onConflict('credential_id').ignore().returning('*');
    if (!inserted) return { refused: 'That passkey is registered already.', reason: 'duplicate' };
    return toPasskey(inserted as PasskeyRow);
  }

  /**
   * The options for navigator.credentials.get(): any passkey of this site, chosen by the person, or only those in
   * `allowed` (one account's, when that account is already known).
   */
  async requestOptions(challenge: string, allowed: Passkey[] = []): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { generateAuthenticationOptions } = await webauthn();
    return generateAuthenticationOptions({
      rpID: this.rpId,
      challenge: Buffer.from(challenge, 'base64url'),
      timeout: CEREMONY_TIMEOUT_MS,
      userVerification: 'required',
      allowCredentials: allowed.map((passkey) => ({ id: passkey.id, transports: passkey.transports as AuthenticatorTransport[] })),
    });
  }

  /**
   * Checks a sign-in's answer to `requestOptions`: a passkey kept here, whose user handle is its account's, signed
   * this challenge with user verification, and its counter (where it keeps one) went forward. Records the use.
   */
  async authenticate(answer: { credential: unknown; challenge: string }): Promise<PasskeySignIn | PasskeyRefusal> {
    const credential = parseCredential(authenticationJson, answer.credential);
    if (!credential) return { refused: NO_PASSKEY, reason: 'malformed' };
    const row = await this.db<PasskeyRow>('passkeys').where({ credential_id: credential.id }).first();
    const { userHandle } = credential.response;
    if (!row || (userHandle !== undefined && Buffer.from(userHandle, 'base64url').toString() !== row.user_id)) {
      // Removed from the account, or registered on another server: the authenticator still offers it.
      return { refused: UNKNOWN_PASSKEY, reason: 'unknown_passkey' };
    }
    const { verifyAuthenticationResponse } = await webauthn();
    const verified = await verifyAuthenticationResponse({
      response: credential as AuthenticationResponseJSON,
      expectedChallenge: answer.challenge,
      expectedOrigin: this.origin,
      expectedRPID: this.rpId,
      credential: { id: row.credential_id, publicKey: new Uint8Array(row.public_key), counter: Number(row.sign_count), transports: row.transports as AuthenticatorTransport[] },
      requireUserVerification: true,
    }).catch((error: Error) => ({ verified: false as const, error }));
    if (!verified.verified) return { refused: 'The passkey could not be checked. Try again.', reason: refusalReason(verified), userId: row.user_id };
    const { newCounter, credentialBackedUp } = verified.authenticationInfo;
    const [updated] = await this.db<PasskeyRow>('passkeys')
      .where({ credential_id: row.credential_id })
      .update({ sign_count: newCounter, backed_up: credentialBackedUp, last_used_at: this.db.fn.now() as unknown as Date })
      .returning('*');
    // Removed between the read and now: the account no longer accepts it.
    if (!updated) return { refused: UNKNOWN_PASSKEY, reason: 'unknown_passkey' };
    return { userId: row.user_id, passkey: toPasskey(updated as PasskeyRow), amr: passkeyAmr(credentialBackedUp) };
  }
}

/** The library's reason for a refusal, shortened for the audit log (its messages name what did not match). */
function refusalReason(outcome: { verified: false; error?: Error } | { verified: boolean }): string {
  const error = (outcome as { error?: Error }).error;
  if (!error) return 'not_verified';
  if (/counter/i.test(error.message)) return 'counter_went_back';
  if (/challenge/i.test(error.message)) return 'wrong_challenge';
  if (/origin/i.test(error.message)) return 'wrong_origin';
  if (/user verification|verified/i.test(error.message)) return 'no_user_verification';
  return 'invalid';
}

/**
 * Challenges: 32 random bytes, base64url. A registration's is handed to the browser with a seal (HMAC under the
 * cookie secrets, bound to the session and user it was made for, with an expiry) and checked when the answer comes
 * back, so nothing is stored between the two requests; a registration replayed would only register the same
 * credential again, which the primary key refuses. A sign-in's is kept server-side with the interaction
 * (src/interaction/passkey-sign-in.ts), so that it works once.
 */
export const newChallenge = (): string => randomBytes(32).toString('base64url');

const sealOf = (secret: string, binding: string, challenge: string, expires: number) =>
  createHmac('sha256', secret).update(`passkey:${binding}:${challenge}:${expires}`).digest('base64url');

/** `challenge.expiry.seal`, for a hidden form field. */
export function sealChallenge(secrets: readonly string[], binding: string, challenge: string, now = Date.now()): string {
  const secret = secrets[0];
  if (!secret) throw new Error('no cookie secret to seal a passkey challenge with');
  const expires = Math.floor((now + CEREMONY_TIMEOUT_MS) / 1000);
  return `${challenge}.${expires}.${sealOf(secret, binding, challenge, expires)}`;
}

/** The challenge a sealed token carries, when it was sealed here for `binding` and has not expired. */
export function unsealChallenge(secrets: readonly string[], binding: string, token: unknown, now = Date.now()): string | undefined {
  if (typeof token !== 'string' || token.length > 200) return undefined;
  const [challenge, expiresText, seal] = token.split('.');
  const expires = Number(expiresText);
  if (!challenge || !seal || !Number.isInteger(expires) || expires * 1000 < now) return undefined;
  const given = Buffer.from(seal);
  const valid = secrets.some((secret) => {
    const expected = Buffer.from(sealOf(secret, binding, challenge, expires));
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  return valid ? challenge : undefined;
}
