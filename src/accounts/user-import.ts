/**
 * Users brought over from another identity provider (`authz users import`): a file of JSON Lines, or one JSON
 * array, each entry `{ email, name?, roles?, emailVerified?, id?, passwordHash? }`.
 *
 * What makes a move painless for the people signing in and the apps relying on them:
 * - `passwordHash`: a bcrypt hash from the old system is kept as it is, so everyone signs in with the password they
 *   had (one of another cost is redone at its owner's next sign-in, as any other is);
 * - `id`: the old subject identifier (a UUID), kept as `sub`, so the apps' links to their users survive.
 *
 * Every entry is checked before anything is written, and the rows go in in one transaction: a file is imported
 * whole or not at all.
 */
import { z } from 'zod';
import { InputError, parseInput } from '../errors.js';
import { newUserSchema } from './users.js';

/**
 * bcrypt's modular-crypt form. `$2y$` is PHP's name for the same algorithm as `$2b$` (the bcrypt library here
 * reads only `$2a$`/`$2b$`); `$2x$` marks hashes of a known-broken implementation, refused.
 */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

export const importedUserSchema = newUserSchema.omit({ password: true }).extend({
  id: z.uuid({ error: 'id must be a UUID (the subject identifier to keep)' }).optional(),
  passwordHash: z
    .string()
    .regex(BCRYPT_HASH, 'passwordHash must be a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31)')
    .transform((hash) => hash.replace(/^\$2y\$/, '$2b$'))
    .optional(),
});

export type ImportedUser = z.output<typeof importedUserSchema>;

/** Problems named in a refusal; a file with more says how many more there are. */
const PROBLEMS_SHOWN = 5;

/** Reads and checks every entry of an import file; throws an InputError naming each bad entry by its line. */
export function parseUserFile(text: string): ImportedUser[] {
  const entries = splitEntries(text);
  const problems: string[] = [];
  const users: ImportedUser[] = [];
  const seen = { email: new Map<string, string>(), id: new Map<string, string>() };
  for (const { where, value } of entries) {
    const user = checkEntry(value, where, problems);
    if (!user) continue;
    const repeated = repeatOf(seen, user, where);
    if (repeated) problems.push(repeated);
    users.push(user);
  }
  if (problems.length > 0) throw new InputError(summarize(problems));
  if (users.length === 0) throw new InputError('the file holds no users');
  return users;
}

/** The entry as a user to create, or undefined with its problem noted (the same checks, NUL included, as users add). */
function checkEntry(value: unknown, where: string, problems: string[]): ImportedUser | undefined {
  try {
    return parseInput(importedUserSchema, value);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    problems.push(`${where}: ${error.message}`);
    return undefined;
  }
}

interface Entry {
  /** "line 3" or "entry 3", for the operator to find it. */
  where: string;
  value: unknown;
}

/** A JSON array's items, or a JSON Lines file's non-blank lines; JSON that cannot be read is refused by position. */
function splitEntries(text: string): Entry[] {
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

/** The same email or id twice in one file is a mistake to fix there, not a user to overwrite. */
function repeatOf(seen: { email: Map<string, string>; id: Map<string, string> }, user: ImportedUser, where: string): string | undefined {
  const earlierEmail = seen.email.get(user.email);
  if (earlierEmail) return `${where}: the email ${user.email} is also at ${earlierEmail}`;
  seen.email.set(user.email, where);
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
