/**
 * Users brought over from another identity provider (`authz users import`): a file of JSON Lines, or one JSON
 * array, each entry `{ email, name?, roles?, groups?, emailVerified?, disabled?, id?, passwordHash?, passwordHistory?,
 * passwordChangeRequired?, totpRequired?, attributes?, linkedIdentities?, passkeys? }`; or a Keycloak export
 * (./keycloak-import.ts).
 *
 * What makes a move painless for the people signing in and the apps relying on them:
 * - `passwordHash`: the old system's hash is kept, so everyone signs in with the password they had: bcrypt as it
 *   is, PBKDF2 or Argon2 (./foreign-hashes.ts) until its owner's next sign-in, when it becomes a bcrypt hash;
 * - `id`: the old subject identifier (a UUID), kept as `sub`, so the apps' links to their users survive.
 *
 * Every entry is checked before anything is written, and the rows go in in one transaction: a file is imported
 * whole or not at all.
 */
import { z } from 'zod';
import { InputError, parseInput } from '../errors.js';
import { parseForeignHash } from './foreign-hashes.js';
import { providerId } from '../federation/identity-providers.js';
import { MAX_PASSKEYS_PER_USER } from './passkeys.js';
import { MAX_PASSWORD_HISTORY } from './password-history.js';
import { keycloakEntries, keycloakGroups } from './keycloak-import.js';
import { newUserSchema } from './users.js';

/**
 * bcrypt's modular-crypt form. `$2y$` is PHP's name for the same algorithm as `$2b$` (the bcrypt library here
 * reads only `$2a$`/`$2b$`); `$2x$` marks hashes of a known-broken implementation, refused.
 */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** A bcrypt hash as the bcrypt library reads it, or a PBKDF2 or Argon2 hash (./foreign-hashes.ts) as it is. */
const passwordHash = z
  .string()
  .max(1024)
  .transform((hash, ctx) => {
    if (BCRYPT_HASH.test(hash)) return hash.replace(/^\$2y\$/, '$2b$');
    const foreign = parseForeignHash(hash);
    if (typeof foreign === 'string') ctx.addIssue({ code: 'custom', message: `${foreign}; bcrypt: $2a$, $2b$ or $2y$, cost 4 to 31` });
    return hash;
  });

/** base64url without padding, as credential ids and keys are kept here. */
const base64url = (max: number) => z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be base64url').max(max);

/** A COSE key is a CBOR map: its first byte has major type 5. The signature checks the rest at the first sign-in. */
const isCoseMap = (key: string) => ((Buffer.from(key, 'base64url')[0] ?? 0) & 0xe0) === 0xa0;

const importedPasskey = z.strictObject({
  /** The credential id, base64url. */
  id: base64url(1366),
  /** Its public key as COSE, base64url. */
  publicKey: base64url(4096).refine(isCoseMap, 'publicKey must be a COSE key (a CBOR map), base64url'),
  name: z.string().trim().min(1).max(100).optional(),
  signCount: z.number().int().min(0).max(2 ** 32 - 1).default(0),
  aaguid: z.uuid().optional(),
  transports: z.array(z.string().max(32)).max(8).default([]),
});

export const importedUserSchema = newUserSchema.omit({ password: true, temporaryPassword: true }).extend({
  id: z.uuid({ error: 'id must be a UUID (the subject identifier to keep)' }).optional(),
  passwordHash: passwordHash.optional(),
  /** The hashes of the passwords before the current one, newest first, for PASSWORD_HISTORY (./password-history.ts). */
  passwordHistory: z.array(passwordHash).max(MAX_PASSWORD_HISTORY).default([]),
  /** Imported as disabled: kept, but unable to sign in until enabled. */
  disabled: z.boolean().default(false),
  /** Must choose a new password at the next sign-in (Keycloak's "Update Password" required action). */
  passwordChangeRequired: z.boolean().default(false),
  /** Must set up two-step verification at the next sign-in (Keycloak's "Configure OTP"). */
  totpRequired: z.boolean().default(false),
  /**
   * Accounts at other identity providers that sign in to this user (Keycloak's federated identities): the
   * provider's id in IDENTITY_PROVIDERS_FILE and the person's `sub` there.
   */
  linkedIdentities: z
    .array(z.strictObject({ provider: providerId, subject: z.string().min(1).max(255), email: z.string().max(254).optional() }))
    .max(20)
    .default([]),
  /**
   * Passkeys (WebAuthn credentials) kept from the old system, Keycloak's included: they keep working where this
   * server's host is the relying party id they were made for (the old system's host).
   */
  passkeys: z.array(importedPasskey).max(MAX_PASSKEYS_PER_USER).default([]),
});

export type ImportedUser = z.output<typeof importedUserSchema>;

/** Problems named in a refusal; a file with more says how many more there are. */
const PROBLEMS_SHOWN = 5;

/** The forms an import file may take: ours (JSON Lines or a JSON array) or a Keycloak export. */
export type ImportFormat = 'lines' | 'keycloak';

/** Reads and checks every entry of an import file; throws an InputError naming each bad entry by its place. */
export function parseUserFile(text: string, format: ImportFormat = 'lines'): ImportedUser[] {
  const entries = format === 'keycloak' ? keycloakEntries(parseJson(text, 'the file')) : splitEntries(text);
  const problems: string[] = [];
  const users: ImportedUser[] = [];
  const seen = { email: new Map<string, string>(), id: new Map<string, string>(), held: new Map<string, string>() };
  for (const entry of entries) {
    const user = checkEntry(entry, problems);
    if (!user) continue;
    const repeated = repeatOf(seen, user, entry.where);
    if (repeated) problems.push(repeated);
    users.push(user);
  }
  if (problems.length > 0) throw new InputError(summarize(problems));
  if (users.length === 0) throw new InputError('the file holds no users');
  return users;
}

/** The groups a file defines, with their roles: a Keycloak realm export's; ours names groups only on its users. */
export function groupsOfFile(text: string, format: ImportFormat = 'lines'): { name: string; roles: string[] }[] {
  return format === 'keycloak' ? keycloakGroups(parseJson(text, 'the file')) : [];
}

/** One user of a file: where it is ("line 3", "user 2 (ada)"), and its value or why it has none. */
export interface ImportEntry {
  where: string;
  value?: unknown;
  problem?: string;
}

/** The entry as a user to create, or undefined with its problem noted (the same checks, NUL included, as users add). */
function checkEntry(entry: ImportEntry, problems: string[]): ImportedUser | undefined {
  if (entry.problem) {
    problems.push(`${entry.where}: ${entry.problem}`);
    return undefined;
  }
  try {
    return parseInput(importedUserSchema, entry.value);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    problems.push(`${entry.where}: ${error.message}`);
    return undefined;
  }
}

/** A JSON array's items, or a JSON Lines file's non-blank lines; JSON that cannot be read is refused by position. */
function splitEntries(text: string): ImportEntry[] {
  if (text.trimStart().startsWith('[')) {
    const array = parseJson(text, 'the file');
    if (!Array.isArray(array)) throw new InputError('the file starts as a JSON array but is not one');
    return array.map((value, index) => ({ where: `entry ${index + 1}`, value }));
  }
  return text
    .split(/\r?\n/)
    .map((line, index) => ({ line, where: `line ${index + 1}` }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, where }) => ({ where, value: parseJson(line, where) }));
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(`${where} is not JSON (${(error as Error).message})`);
  }
}

/**
 * The same email, id, linked identity or passkey twice in one file is a mistake to fix there, not a user to
 * overwrite (`seen.held`: the identities and passkeys, each held by one user).
 */
function repeatOf(seen: Record<'email' | 'id' | 'held', Map<string, string>>, user: ImportedUser, where: string): string | undefined {
  const earlierEmail = seen.email.get(user.email);
  if (earlierEmail) return `${where}: the email ${user.email} is also at ${earlierEmail}`;
  seen.email.set(user.email, where);
  for (const { provider, subject } of user.linkedIdentities) {
    const earlierLink = seen.held.get(`identity ${provider} ${subject}`);
    if (earlierLink) return `${where}: the ${provider} account ${subject} is also at ${earlierLink}`;
    seen.held.set(`identity ${provider} ${subject}`, where);
  }
  for (const { id } of user.passkeys) {
    const earlierPasskey = seen.held.get(`passkey ${id}`);
    if (earlierPasskey) return `${where}: the passkey ${id.slice(0, 16)}… is also at ${earlierPasskey}`;
    seen.held.set(`passkey ${id}`, where);
  }
  if (!user.id) return undefined;
  const earlierId = seen.id.get(user.id);
  if (earlierId) return `${where}: the id ${user.id} is also at ${earlierId}`;
  seen.id.set(user.id, where);
  return undefined;
}

function summarize(problems: string[]): string {
  const shown = problems.slice(0, PROBLEMS_SHOWN).join('; ');
  const more = problems.length - PROBLEMS_SHOWN;
  return more > 0 ? `${shown}; and ${more} more problem${more === 1 ? '' : 's'}` : shown;
}
