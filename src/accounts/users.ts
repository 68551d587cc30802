/**
 * The `users` table: who can sign in, with which password and roles. The row id is the OpenID `sub`.
 * Emails are stored lower-cased and are unique. Passwords only ever reach the database as bcrypt hashes.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { authenticatorName } from './authenticator-names.js';
import { type Attributes, attributeChangesSchema, attributesSchema, changedAttributes, tooManyAttributes } from './attributes.js';
import { groupName, requireGroupsExist } from './groups.js';
import { roleName } from './roles.js';
import type { AuditSink } from '../audit/audit-log.js';
import { ConflictError, InputError, NotFoundError, parseInput } from '../errors.js';
import { type Database, isUniqueViolation } from '../store/database.js';
import { deleteAccountRecords, deleteGrantBoundRecords } from '../store/grant-records.js';
import { run, statement } from '../store/prepared-statements.js';
import { foundKey, take } from '../store/request-scope.js';
import { storageId } from '../store/storage-id.js';
import type { EmailLink } from './email-links.js';
import { PasswordHistory } from './password-history.js';
import { type PasswordContext, PasswordPolicy } from './password-policy.js';
import { PasswordHasher, newPasswordRefusal } from './passwords.js';
import type { ImportedUser } from './user-import.js';

export interface User {
  id: string;
  email: string;
  name: string | null;
  /** Their own roles; their tokens also carry those of their groups (./groups.ts). */
  roles: string[];
  /** The groups they belong to. */
  groups: string[];
  emailVerified: boolean;
  disabledAt: Date | null;
  passwordChangedAt: Date | null;
  /** Sessions and tokens issued before this moment are void ("log out everywhere"). */
  sessionsRevokedAt: Date | null;
  /** An administrator asked this user to set up two-step verification (./two-factor.ts). */
  totpRequired: boolean;
  /** When the user set up two-step verification; null while they have not. */
  totpEnrolledAt: Date | null;
  /**
   * An administrator set the password as temporary, or asked for a new one: the next sign-in waits at "Choose a
   * new password" until the user has chosen one (src/interaction/password-change.ts).
   */
  passwordChangeRequired: boolean;
  /** Their own attributes (./attributes.ts); those USER_CLAIMS names are token claims. */
  attributes: Attributes;
  /** The version of the terms of service they accepted (TERMS_VERSION), and when; null while they have not. */
  termsAccepted: { version: string; at: Date } | null;
  createdAt: Date;
  updatedAt: Date;
}

const USER_ID = z.uuid();

/**
 * Whether the account has a password of its own: set whenever a hash is (made, imported, changed, reset); an
 * account a provider made (src/federation/), or an invited one, has none until its person sets one.
 */
export const hasOwnPassword = (user: User) => user.passwordChangedAt !== null;

/** Columns named, not `*`: a prepared `select *` fails once a migration adds a column under a running server. */
const FIND_BY_ID = statement(
  'users_find_by_id',
  `select id, email, name, password_hash, roles, groups, email_verified, disabled_at, password_changed_at, sessions_revoked_at,
          totp_required, totp_enrolled_at, password_change_required, attributes, terms_accepted_version, terms_accepted_at,
          created_at, updated_at
   from users where id = $1`,
);

interface UserRow {
  id: string;
  email: string;
  name: string | null;
  password_hash: string | null;
  roles: string[];
  groups?: string[];
  email_verified: boolean;
  disabled_at: Date | null;
  password_changed_at: Date | null;
  sessions_revoked_at: Date | null;
  totp_required: boolean;
  password_change_required?: boolean;
  attributes?: Attributes;
  terms_accepted_version?: string | null;
  terms_accepted_at?: Date | null;
  totp_enrolled_at: Date | null;
  /** Read only by ./two-factor.ts, which selects them itself. */
  totp_secret?: string | null;
  totp_last_step?: string | null;
  totp_recovery_codes?: string[] | null;
  created_at: Date;
  updated_at: Date;
}


/** A password as given; what it must be is the repository's PasswordPolicy's to say (it needs the account). */
const password = z.string().max(1024, 'a password may be at most 72 bytes long');

export const newUserSchema = z.strictObject({
  email: z.email({ error: 'email must be an email address' }).max(254).transform((email) => email.toLowerCase()),
  password: password.optional(),
  /** The password is temporary: the user chooses their own at the first sign-in. */
  temporaryPassword: z.boolean().default(false),
  attributes: attributesSchema.default({}),
  name: z.string().trim().min(1).max(200).optional(),
  roles: z.array(roleName).max(100).default([]),
  groups: z.array(groupName).max(100).default([]).meta({ description: 'the groups they belong to, whose roles they hold too' }),
  emailVerified: z.boolean().default(false),
});

export type NewUser = z.input<typeof newUserSchema>;

export const userChangesSchema = z.strictObject({
  email: z
    .email({ error: 'email must be an email address' })
    .max(254)
    .transform((email) => email.toLowerCase())
    .optional()
    .meta({ description: 'A new sign-in address; it counts as unconfirmed unless emailVerified is given too' }),
  name: z.string().trim().min(1).max(200).nullable().optional(),
  roles: z.array(roleName).max(100).optional(),
  groups: z.array(groupName).max(100).optional().meta({ description: 'replaces the list of groups they belong to' }),
  emailVerified: z.boolean().optional(),
  totpRequired: z
    .boolean()
    .optional()
    .meta({ description: 'true: the user must set up two-step verification (an authenticator app) at the next sign-in; false does not remove an app set up already' }),
  passwordChangeRequired: z
    .boolean()
    .optional()
    .meta({ description: 'true: the user must choose a new password at the next sign-in (Keycloak\'s "Update Password" required action); false lifts that' }),
  attributes: attributeChangesSchema.optional(),
});

export type UserChanges = z.input<typeof userChangesSchema>;

export const userSearchSchema = z.object({
  email: z.string().max(254).optional(),
  q: z.string().trim().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.uuid({ error: 'the cursor is a user id' }).optional(),
});

export type UserSearch = z.input<typeof userSearchSchema>;

export interface UserGrant {
  grantId: string;
  clientId: string | null;
  /** OpenID Connect scopes granted. */
  scopes: string[];
  /** API scopes granted, by resource indicator. */
  resources: Record<string, string[]>;
  createdAt: Date | null;
  expiresAt: Date | null;
}

interface GrantPayload {
  jti?: string;
  clientId?: string;
  iat?: number;
  openid?: { scope?: string };
  resources?: Record<string, string>;
}

/** A users row as `to_jsonb` gives it: timestamps as ISO text. */
function userRowFromJson(json: Record<string, unknown>): UserRow {
  const date = (value: unknown) => (typeof value === 'string' ? new Date(value) : null);
  return {
    ...(json as unknown as UserRow),
    disabled_at: date(json.disabled_at),
    password_changed_at: date(json.password_changed_at),
    sessions_revoked_at: date(json.sessions_revoked_at),
    totp_enrolled_at: date(json.totp_enrolled_at),
    terms_accepted_at: date(json.terms_accepted_at),
    created_at: date(json.created_at) as Date,
    updated_at: date(json.updated_at) as Date,
  };
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    roles: row.roles ?? [],
    groups: row.groups ?? [],
    emailVerified: row.email_verified,
    disabledAt: row.disabled_at,
    passwordChangedAt: row.password_changed_at,
    sessionsRevokedAt: row.sessions_revoked_at,
    totpRequired: row.totp_required ?? false,
    totpEnrolledAt: row.totp_enrolled_at ?? null,
    passwordChangeRequired: row.password_change_required ?? false,
    attributes: row.attributes ?? {},
    termsAccepted: row.terms_accepted_version && row.terms_accepted_at ? { version: row.terms_accepted_version, at: row.terms_accepted_at } : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}


/**
 * The groups an import makes: those the file defines, then those its users name that exist nowhere (without
 * roles); a group already here is kept as it is. Returns the names made, in order.
 */
async function importGroups(trx: Database, defined: readonly { name: string; roles: string[] }[], users: readonly ImportedUser[]): Promise<string[]> {
  const named = new Map(defined.map((group) => [group.name, group.roles]));
  for (const user of users) for (const group of user.groups) if (!named.has(group)) named.set(group, []);
  if (named.size === 0) return [];
  const rows = [...named].map(([name, roles]) => ({ name, roles: [...new Set(roles)] }));
  const made = (await trx('groups').insert(rows).onConflict('name').ignore().returning('name')) as { name: string }[];
  return made.map((row) => row.name);
}

/** Rows per insert of an import: 8 parameters each, far below PostgreSQL's 65,535 per statement. */
const IMPORT_BATCH_SIZE = 1000;

/** An imported user as a row: a new id unless one is kept; a kept hash counts as the password set now. */
function importedRow(user: ImportedUser): Partial<UserRow> {
  return {
    id: user.id ?? randomUUID(),
    email: user.email,
    name: user.name ?? null,
    password_hash: user.passwordHash ?? null,
    roles: user.roles,
    groups: [...new Set(user.groups)],
    email_verified: user.emailVerified,
    password_changed_at: user.passwordHash ? new Date() : null,
    disabled_at: user.disabled ? new Date() : null,
    password_change_required: user.passwordChangeRequired,
    totp_required: user.totpRequired,
    attributes: JSON.stringify(user.attributes) as unknown as Attributes,
  };
}

/** An imported passkey as a row (./passkeys.ts): named as one added here would be when the file names none. */
function importedPasskeyRow(passkey: ImportedUser['passkeys'][number], userId: string) {
  return {
    credential_id: passkey.id,
    user_id: userId,
    name: passkey.name ?? authenticatorName(passkey.aaguid ?? null) ?? 'Passkey',
    public_key: Buffer.from(passkey.publicKey, 'base64url'),
    sign_count: passkey.signCount,
    transports: passkey.transports,
    aaguid: passkey.aaguid ?? null,
  };
}

export interface UserRepositoryOptions {
  bcryptCost: number;
  /** Where administrative changes are recorded, and who makes them (`cli`, `admin-api`). */
  audit?: AuditSink;
  actor?: string;
  /** Where the user's login sessions live, so that logging out everywhere also removes them from listings. */
  sessions?: { endAll(accountId: string): Promise<void> };
  /** What a new password must be (PASSWORD_MIN_LENGTH, PASSWORD_BLOCKLIST_FILE); the defaults without it. */
  passwordPolicy?: PasswordPolicy;
  /** How many of a user's latest passwords a new one may not repeat (PASSWORD_HISTORY); 0, the default: none. */
  passwordHistory?: number;
  /** For how many days a replaced password may not come back (PASSWORD_HISTORY_DAYS); 0, the default: none. */
  passwordHistoryDays?: number;
}

export class UserRepository {
  readonly passwords: PasswordHasher;
  readonly passwordPolicy: PasswordPolicy;
  readonly passwordHistory: PasswordHistory;
  readonly #audit?: AuditSink;
  readonly #actor: string;
  readonly #sessions?: UserRepositoryOptions['sessions'];

  constructor(
    private readonly db: Database,
    options: UserRepositoryOptions,
  ) {
    this.passwords = new PasswordHasher(options.bcryptCost);
    this.passwordPolicy = options.passwordPolicy ?? new PasswordPolicy();
    this.passwordHistory = new PasswordHistory(db, this.passwords, options.passwordHistory ?? 0, options.passwordHistoryDays ?? 0);
    this.#audit = options.audit;
    this.#actor = options.actor ?? 'server';
    this.#sessions = options.sessions;
  }

  /**
   * The same store and password rules, with changes audited as another's (`admin-api`, `self`) and their session
   * ends told through `sessions`: one repository per actor, none of the rules copied by hand.
   */
  actingAs(options: Pick<UserRepositoryOptions, 'audit' | 'actor' | 'sessions'>): UserRepository {
    return new UserRepository(this.db, {
      bcryptCost: this.passwords.cost,
      passwordPolicy: this.passwordPolicy,
      passwordHistory: this.passwordHistory.length,
      passwordHistoryDays: this.passwordHistory.days,
      ...options,
    });
  }

  #record(type: string, user: User, detail: Record<string, unknown> = {}): void {
    this.#audit?.record({ type, outcome: 'success', accountId: user.id, detail: { by: this.#actor, ...detail } });
  }

  /** A form's new password typed twice, as a sentence for the person at it; undefined when it will do. */
  newPasswordRefusal(password: string, repeat: string, context: PasswordContext): Promise<string | undefined> {
    return newPasswordRefusal(this.passwordPolicy, password, repeat, context);
  }

  /** `value` when the policy takes it for this account; an InputError naming the field otherwise. */
  async #checkedPassword(value: string, context: PasswordContext): Promise<string> {
    const problem = await this.passwordPolicy.problem(parseInput(password, value), context);
    if (problem) throw new InputError(`password: ${problem}`);
    return value;
  }

  async create(input: NewUser): Promise<User> {
    const user = parseInput(newUserSchema, input);
    if (user.password) await this.#checkedPassword(user.password, user);
    await requireGroupsExist(this.db, user.groups);
    const passwordHash = user.password ? await this.passwords.hash(user.password) : null;
    try {
      const [row] = await this.db<UserRow>('users')
        .insert({
          id: randomUUID(),
          email: user.email,
          name: user.name ?? null,
          password_hash: passwordHash,
          roles: user.roles,
          groups: [...new Set(user.groups)],
          email_verified: user.emailVerified,
          password_changed_at: passwordHash ? new Date() : null,
          password_change_required: Boolean(passwordHash) && user.temporaryPassword,
          attributes: JSON.stringify(user.attributes) as unknown as Attributes,
        })
        .returning('*');
      const created = toUser(row as UserRow);
      this.#record('user_created', created, { roles: created.roles, ...(created.groups.length > 0 ? { groups: created.groups } : {}) });
      return created;
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`a user with the email ${user.email} already exists`);
      throw error;
    }
  }

  /**
   * A person's own account made with a passkey instead of a password (src/interaction/passkey-registration.ts).
   * `id` is the one the passkey was made for (its user handle), and `alsoWithin` keeps the passkey in the same
   * transaction: there is never an account without its passkey, nor a passkey without its account. A ConflictError
   * when the address is taken; whatever `alsoWithin` throws undoes the account too.
   */
  async createWithoutPassword<T>(
    input: { id: string; email: string; name?: string; roles: string[]; termsVersion?: string },
    alsoWithin: (trx: Database, user: User) => Promise<T>,
  ): Promise<{ user: User; also: T }> {
    const id = parseInput(USER_ID, input.id);
    const user = parseInput(newUserSchema, { email: input.email, name: input.name, roles: input.roles });
    const terms = input.termsVersion ? { terms_accepted_version: input.termsVersion, terms_accepted_at: new Date() } : {};
    try {
      const made = await this.db.transaction(async (trx) => {
        const [row] = await trx<UserRow>('users')
          .insert({ id, email: user.email, name: user.name ?? null, roles: user.roles, email_verified: false, ...terms })
          .returning('*');
        const created = toUser(row as UserRow);
        return { user: created, also: await alsoWithin(trx, created) };
      });
      this.#record('user_created', made.user, { roles: made.user.roles });
      if (input.termsVersion) this.#record('terms_accepted', made.user, { version: input.termsVersion });
      return made;
    } catch (error) {
      if (isUniqueViolation(error) && (error as { table?: string }).table === 'users') throw new ConflictError(`a user with the email ${user.email} already exists`);
      throw error;
    }
  }

  /**
   * Creates the users of an import file (./user-import.ts) in one transaction, a batch of rows per statement:
   * all of them, or none when one exists already (by email or id). With `skipExisting`, those whose email exists
   * are left out instead (an import run again after a partial failure elsewhere); an id taken by another email is
   * still refused. `groups`: the groups the file defines (a Keycloak realm's, with their roles), made in the same
   * transaction unless one of that name exists already (it is kept as it is); a group a user names that exists
   * nowhere is made without roles, and listed in `createdGroups` with the others made.
   */
  async importUsers(
    users: readonly ImportedUser[],
    options: { skipExisting?: boolean; groups?: readonly { name: string; roles: string[] }[] } = {},
  ): Promise<{ created: User[]; skipped: string[]; createdGroups: string[] }> {
    const created: User[] = [];
    const skipped: string[] = [];
    let createdGroups: string[] = [];
    try {
      await this.db.transaction(async (trx) => {
        createdGroups = await importGroups(trx, options.groups ?? [], users);
        for (let start = 0; start < users.length; start += IMPORT_BATCH_SIZE) {
          const batch = users.slice(start, start + IMPORT_BATCH_SIZE);
          const fresh = await this.#withoutExisting(trx, batch, options.skipExisting ?? false, skipped);
          if (fresh.length === 0) continue;
          const rows = (await trx<UserRow>('users').insert(fresh.map(importedRow)).returning('*')) as UserRow[];
          created.push(...rows.map(toUser));
          // By email, which is unique: the order RETURNING gives rows in is not promised.
          const idOf = new Map(rows.map((row) => [row.email, row.id]));
          const links = fresh.flatMap((user) =>
            user.linkedIdentities.map((link) => ({ provider: link.provider, subject: link.subject, email: link.email ?? null, user_id: idOf.get(user.email) })),
          );
          if (links.length > 0) await trx('linked_identities').insert(links);
          const passkeys = fresh.flatMap((user) => user.passkeys.map((passkey) => importedPasskeyRow(passkey, idOf.get(user.email) as string)));
          if (passkeys.length > 0) await trx('passkeys').insert(passkeys);
          // Oldest first, so that the newest has the highest id, as a change would have written them.
          const history = fresh.flatMap((user) => user.passwordHistory.toReversed().map((hash) => ({ user_id: idOf.get(user.email), password_hash: hash })));
          if (history.length > 0) await trx('password_history').insert(history);
        }
      });
    } catch (error) {
      if (isUniqueViolation(error) && (error as { table?: string }).table === 'linked_identities') {
        throw new ConflictError('a linked identity of the file signs in to a user here already; nothing was imported');
      }
      if (isUniqueViolation(error) && (error as { table?: string }).table === 'passkeys') {
        throw new ConflictError('a passkey of the file is registered here already; nothing was imported');
      }
      if (isUniqueViolation(error)) throw new ConflictError('a user of the file was created meanwhile by someone else; nothing was imported, run the import again');
      throw error;
    }
    // Written chunk by chunk: recorded at once, a large import's events would overflow the audit buffer.
    for (let start = 0; start < created.length; start += IMPORT_BATCH_SIZE) {
      for (const user of created.slice(start, start + IMPORT_BATCH_SIZE)) this.#record('user_created', user, { roles: user.roles, imported: true });
      await this.#audit?.flush?.();
    }
    for (const name of createdGroups) this.#audit?.record({ type: 'group_created', outcome: 'success', detail: { by: this.#actor, group: name, imported: true } });
    return { created, skipped, createdGroups };
  }

  /** The batch less the users already there (noted in `skipped`), or a ConflictError naming them. */
  async #withoutExisting(trx: Database, batch: readonly ImportedUser[], skipExisting: boolean, skipped: string[]): Promise<ImportedUser[]> {
    const ids = batch.flatMap((user) => (user.id ? [user.id] : []));
    const existing = await trx<UserRow>('users')
      .whereIn('email', batch.map((user) => user.email))
      .orWhereIn('id', ids)
      .select('id', 'email');
    if (existing.length === 0) return [...batch];
    const emails = new Set(existing.map((row) => row.email));
    const takenIds = existing.filter((row) => ids.includes(row.id));
    const idClash = takenIds.find((row) => !batch.some((user) => user.id === row.id && user.email === row.email));
    if (idClash) throw new ConflictError(`the id ${idClash.id} belongs to ${idClash.email} already; nothing was imported`);
    if (!skipExisting) {
      const named = [...emails].slice(0, 5).join(', ');
      throw new ConflictError(`${emails.size} of the file's users exist already (${named}); nothing was imported (--skip-existing leaves them out)`);
    }
    skipped.push(...emails);
    return batch.filter((user) => !emails.has(user.email));
  }

  /** On every token request and userinfo call: a prepared statement (src/store/prepared-statements.ts). */
  async findById(id: string): Promise<User | undefined> {
    if (!USER_ID.safeParse(id).success) return undefined;
    // Read in this request together with a refresh token (src/store/refresh-token-adapter.ts); null: no such user.
    const readAlong = take<Record<string, unknown> | null>(foundKey('User', id));
    if (readAlong !== undefined) return readAlong ? toUser(userRowFromJson(readAlong)) : undefined;
    const [row] = await run<UserRow>(this.db, FIND_BY_ID, [id]);
    return row ? toUser(row) : undefined;
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const row = await this.db<UserRow>('users').where({ email: email.trim().toLowerCase() }).first();
    return row ? toUser(row) : undefined;
  }

  /**
   * Runs `change` in a transaction holding the user's row locked (`SELECT … FOR UPDATE`), with the row as it is
   * now. Changes that must see each other's outcome then run one after the other: two tabs taking away an
   * account's last two ways to sign in at once (src/self-service/ways-in.ts). NotFoundError when the user is gone.
   */
  async whileLocked<T>(id: string, change: (trx: Database, user: User) => Promise<T>): Promise<T> {
    return this.db.transaction(async (trx) => {
      const row = await trx<UserRow>('users').where({ id }).forUpdate().first();
      if (!row) throw new NotFoundError(`no user ${id}`);
      return change(trx, toUser(row));
    });
  }

  /** Looks a user up by id or by email, as the CLI accepts either. */
  async require(idOrEmail: string): Promise<User> {
    const user = idOrEmail.includes('@') ? await this.findByEmail(idOrEmail) : await this.findById(idOrEmail);
    if (!user) throw new NotFoundError(`no user ${idOrEmail}`);
    return user;
  }

  async list(options: { limit?: number; offset?: number } = {}): Promise<User[]> {
    const rows = await this.db<UserRow>('users')
      .orderBy('created_at')
      .orderBy('id')
      .limit(options.limit ?? 1000)
      .offset(options.offset ?? 0);
    return rows.map(toUser);
  }

  /**
   * Finds users by exact email or by a fragment of email or name (`q`), ordered by id and paged by keyset:
   * `after` is the last id of the previous page; `next` is set when there may be more.
   */
  async search(query: UserSearch = {}): Promise<{ users: User[]; next: string | null }> {
    const { email, q, limit, after } = parseInput(userSearchSchema, query);
    const rows = await this.db<UserRow>('users')
      .modify((builder) => {
        if (email) builder.where({ email: email.trim().toLowerCase() });
        if (q) {
          const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
          builder.where((inner) => inner.whereILike('email', pattern).orWhereILike('name', pattern));
        }
        if (after) builder.where('id', '>', after);
      })
      .orderBy('id')
      .limit(limit);
    const users = rows.map(toUser);
    return { users, next: users.length === limit ? (users.at(-1)?.id ?? null) : null };
  }

  /**
   * Changes the profile fields an administrator may set.
   * @param audited added to the `user_updated` event: what made the change, where it was not an administrator
   */
  async update(idOrEmail: string, changes: UserChanges, audited: Record<string, unknown> = {}): Promise<User> {
    const value = parseInput(userChangesSchema, changes);
    const user = await this.require(idOrEmail);
    const row: Partial<UserRow> = {};
    // An administrator's new address is not shown to be the user's: unconfirmed until the user confirms it.
    if (value.email !== undefined && value.email !== user.email) Object.assign(row, { email: value.email, email_verified: false });
    if (value.name !== undefined) row.name = value.name;
    if (value.roles !== undefined) row.roles = [...new Set(value.roles)];
    if (value.groups !== undefined) {
      await requireGroupsExist(this.db, value.groups);
      row.groups = [...new Set(value.groups)];
    }
    if (value.emailVerified !== undefined) row.email_verified = value.emailVerified;
    if (value.totpRequired !== undefined) row.totp_required = value.totpRequired;
    if (value.passwordChangeRequired !== undefined) row.password_change_required = value.passwordChangeRequired;
    if (value.attributes && Object.keys(value.attributes).length > 0) {
      if (tooManyAttributes(changedAttributes(user.attributes, value.attributes))) throw new InputError('attributes: a user has 50 attributes at most');
      // Merged in SQL, so that two administrators changing different attributes at once both keep theirs.
      const set = Object.fromEntries(Object.entries(value.attributes).filter(([, each]) => each !== null));
      const removed = Object.keys(value.attributes).filter((name) => value.attributes?.[name] === null);
      (row as Record<string, unknown>).attributes = this.db.raw('(attributes || ?::jsonb) - ?::text[]', [JSON.stringify(set), removed]);
    }
    if (Object.keys(row).length === 0) return user;
    const updated = await this.#update(user.id, row).catch((error: unknown) => {
      if (isUniqueViolation(error)) throw new ConflictError(`a user with the email ${value.email} already exists`);
      throw error;
    });
    const emailChange = row.email ? { from: user.email, to: updated.email } : {};
    this.#record('user_updated', updated, { fields: Object.keys(value), roles: updated.roles, ...(value.groups ? { groups: updated.groups } : {}), ...emailChange, ...audited });
    return updated;
  }

  /** The user's grants (consents and client authorizations), without any token value. */
  async listGrants(idOrEmail: string): Promise<UserGrant[]> {
    const user = await this.require(idOrEmail);
    const rows: { payload: GrantPayload; expires_at: Date | null }[] = await this.db('oidc_models')
      .select('payload', 'expires_at')
      .where({ model: 'Grant', account_id: user.id })
      .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', new Date()))
      .orderBy('id');
    return rows.map(({ payload, expires_at }) => ({
      // The row id is a hash of the grant id (src/store/storage-id.ts); the grant keeps its own id as jti.
      grantId: String(payload.jti),
      clientId: payload.clientId ?? null,
      scopes: (payload.openid?.scope ?? '').split(' ').filter(Boolean),
      resources: Object.fromEntries(Object.entries(payload.resources ?? {}).map(([resource, scope]) => [resource, scope.split(' ').filter(Boolean)])),
      createdAt: typeof payload.iat === 'number' ? new Date(payload.iat * 1000) : null,
      expiresAt: expires_at,
    }));
  }

  /** Deletes one grant of the user and everything issued under it (refresh tokens; opaque tokens die with it). */
  async revokeGrant(idOrEmail: string, grantId: string): Promise<void> {
    const user = await this.require(idOrEmail);
    const clientId = await this.db.transaction(async (trx) => {
      const deleted: { payload: GrantPayload }[] = await trx('oidc_models')
        .where({ model: 'Grant', id: storageId(grantId), account_id: user.id })
        .delete()
        .returning('payload');
      if (deleted.length === 0) throw new NotFoundError(`no grant ${grantId} of user ${user.id}`);
      await deleteGrantBoundRecords(trx, grantId);
      return deleted[0]?.payload.clientId ?? null;
    });
    this.#record('user_grant_revoked', user, { grantId, clientId });
  }

  /**
   * Checks an email and password. Unknown emails, disabled users and users without a password all fail after
   * the same bcrypt work. A hash made at another cost is upgraded on success.
   */
  async verifyPassword(email: string, presented: string): Promise<User | undefined> {
    const row = await this.db<UserRow>('users').where({ email: email.trim().toLowerCase() }).first();
    const ok = await this.passwords.verify(presented, row?.password_hash);
    if (!ok || !row || row.disabled_at) return undefined;
    if (row.password_hash && this.passwords.needsRehash(row.password_hash)) {
      await this.db('users')
        .where({ id: row.id, password_hash: row.password_hash })
        .update({ password_hash: await this.passwords.hash(presented) });
    }
    return toUser(row);
  }

  /**
   * An administrator's new password ends every session and token of the user: whoever knew the old one is out.
   * `temporary`: the user must choose their own at the next sign-in (the administrator knows this one). Like the
   * user's own, it may not repeat a recent password (PASSWORD_HISTORY): a PasswordReusedError.
   */
  async setPassword(idOrEmail: string, newPassword: string, options: { temporary?: boolean } = {}): Promise<User> {
    const user = await this.require(idOrEmail);
    await this.#checkedPassword(newPassword, user);
    await this.passwordHistory.refuseReused(user.id, newPassword);
    const hash = await this.passwords.hash(newPassword);
    const temporary = options.temporary ?? false;
    const changes = { password_hash: hash, password_changed_at: new Date(), password_change_required: temporary };
    const updated = await this.#revokeEverything(user.id, changes, (trx) => this.passwordHistory.keepCurrent(trx, user.id));
    this.#record('user_password_changed', updated, temporary ? { temporary } : {});
    return updated;
  }

  /**
   * The user's own change, on the account page, which has checked the current password: their sessions and apps
   * are left as they are (the page offers to end the other sessions, and lists the apps), as Keycloak's account
   * console does. An administrator's `setPassword` ends everything instead. Also the sign-in's "Choose a new
   * password" after a temporary one (`auditDetail` says so). Either way the change is no longer required. A
   * recent password (PASSWORD_HISTORY) is a PasswordReusedError: pages check the current password first, so that
   * the history tells nothing to someone at a session who does not know it.
   */
  async changePassword(id: string, newPassword: string, auditDetail: Record<string, unknown> = {}): Promise<User> {
    await this.#checkedPassword(newPassword, (await this.findById(id)) ?? {});
    await this.passwordHistory.refuseReused(id, newPassword);
    const hash = await this.passwords.hash(newPassword);
    const changes = { password_hash: hash, password_changed_at: new Date(), password_change_required: false };
    const updated = await this.db.transaction(async (trx) => {
      await this.passwordHistory.keepCurrent(trx, id);
      return this.#update(id, changes, trx);
    });
    this.#record('user_password_changed', updated, auditDetail);
    return updated;
  }

  /**
   * The user goes without a password (the account page's "Remove password", which has checked that a passkey or
   * another identity provider's sign-in is left; or an administrator, as Keycloak's credential deletion, who may
   * leave none: "Forgot your password?" sets one again): the password stops working, a reset link already mailed
   * stops working too, and PASSWORD_HISTORY remembers it. Sessions and apps stay, as after a change.
   */
  async removePassword(idOrEmail: string, db: Database = this.db): Promise<User> {
    const { id } = await this.require(idOrEmail);
    const updated = await db.transaction(async (trx) => {
      await this.passwordHistory.keepCurrent(trx, id);
      await trx('email_links').where({ user_id: id, purpose: 'password_reset' }).delete();
      return this.#update(id, { password_hash: null, password_changed_at: null, password_change_required: false }, trx);
    });
    this.#record('user_password_removed', updated);
    return updated;
  }

  /**
   * A forgotten password replaced through a link sent by mail (src/self-service/email-link-pages.ts). `redeem` uses
   * the link up in the same transaction as the change, so the link works once and a failure leaves both as they
   * were. The link is void for a disabled user, and once the password has changed since it was sent. Opening it
   * proved the address is the user's, so a matching address counts as confirmed. Sessions and apps are left as
   * they are: the caller ends the sessions when asked to. `userId` is the link's account, as the page read it
   * before using the link up: a recent password of theirs (PASSWORD_HISTORY) is a PasswordReusedError, and the
   * link is left unused. Returns undefined when the link did not work.
   */
  async resetPassword(userId: string, redeem: (trx: Database) => Promise<EmailLink | undefined>, newPassword: string): Promise<User | undefined> {
    // The page checked the policy against the link's account first, with its email and name.
    await this.#checkedPassword(newPassword, {});
    await this.passwordHistory.refuseReused(userId, newPassword);
    const hash = await this.passwords.hash(newPassword);
    const user = await this.db.transaction(async (trx) => {
      const link = await redeem(trx);
      const row = link?.userId === userId ? await trx<UserRow>('users').where({ id: userId }).forUpdate().first() : undefined;
      if (!link || !row || row.disabled_at || (row.password_changed_at && row.password_changed_at > link.createdAt)) return undefined;
      await this.passwordHistory.keepCurrent(trx, row.id);
      const now = new Date();
      const changes = {
        password_hash: hash,
        password_changed_at: now,
        password_change_required: false,
        email_verified: row.email_verified || row.email === link.email,
        updated_at: now,
      };
      const [updated] = await trx<UserRow>('users').where({ id: row.id }).update(changes).returning('*');
      return toUser(updated as UserRow);
    });
    if (user) this.#record('user_password_reset', user);
    return user;
  }

  /**
   * The user's address confirmed through a link sent to it; void when the user no longer has that address or is
   * disabled. Returns the user, or undefined when the link did not work.
   */
  async confirmEmail(redeem: (trx: Database) => Promise<EmailLink | undefined>): Promise<User | undefined> {
    const user = await this.db.transaction(async (trx) => {
      const link = await redeem(trx);
      if (!link) return undefined;
      const [row] = await trx<UserRow>('users')
        .where({ id: link.userId, email: link.email, disabled_at: null })
        .update({ email_verified: true, updated_at: new Date() })
        .returning('*');
      return row && toUser(row as UserRow);
    });
    if (user) this.#record('user_email_confirmed', user, { email: user.email });
    return user;
  }

  /**
   * A new address, confirmed through a link sent to it, replaces the user's (and counts as confirmed). Returns the
   * user and the address replaced, or undefined when the link did not work; a ConflictError when another account
   * has taken the address since the link was sent.
   */
  async changeEmail(redeem: (trx: Database) => Promise<EmailLink | undefined>): Promise<{ user: User; previousEmail: string } | undefined> {
    try {
      const changed = await this.db.transaction(async (trx) => {
        const link = await redeem(trx);
        const before = link && (await trx<UserRow>('users').where({ id: link.userId, disabled_at: null }).forUpdate().first('email'));
        if (!link || !before) return undefined;
        const [row] = await trx<UserRow>('users')
          .where({ id: link.userId })
          .update({ email: link.email, email_verified: true, updated_at: new Date() })
          .returning('*');
        return { user: toUser(row as UserRow), previousEmail: before.email };
      });
      if (changed) this.#record('user_email_changed', changed.user, { from: changed.previousEmail, to: changed.user.email });
      return changed;
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError('another account uses that address now');
      throw error;
    }
  }

  /** The user accepted this version of the terms of service (src/interaction/terms.ts, and registration). */
  async acceptTerms(id: string, version: string): Promise<User> {
    const updated = await this.#update(id, { terms_accepted_version: version, terms_accepted_at: new Date() });
    this.#record('terms_accepted', updated, { version });
    return updated;
  }

  async setRoles(idOrEmail: string, roles: string[]): Promise<User> {
    const value = parseInput(z.array(roleName).max(100), roles);
    const user = await this.require(idOrEmail);
    const updated = await this.#update(user.id, { roles: [...new Set(value)] });
    this.#record('user_roles_changed', updated, { roles: updated.roles });
    return updated;
  }

  /** Puts the user in exactly these groups (each must exist). */
  async setGroups(idOrEmail: string, groups: string[]): Promise<User> {
    const value = parseInput(z.array(groupName).max(100), groups);
    const user = await this.require(idOrEmail);
    await requireGroupsExist(this.db, value);
    const updated = await this.#update(user.id, { groups: [...new Set(value)] });
    this.#record('user_groups_changed', updated, { groups: updated.groups });
    return updated;
  }

  /** A disabled user cannot sign in, and every session and token they hold stops working. */
  async disable(idOrEmail: string): Promise<User> {
    const user = await this.require(idOrEmail);
    const updated = await this.#revokeEverything(user.id, { disabled_at: user.disabledAt ?? new Date() });
    this.#record('user_disabled', updated);
    return updated;
  }

  async enable(idOrEmail: string): Promise<User> {
    const user = await this.require(idOrEmail);
    const updated = await this.#update(user.id, { disabled_at: null });
    this.#record('user_enabled', updated);
    return updated;
  }

  /**
   * Removes the user's two-step verification (a lost phone): their authenticator app's codes and their recovery
   * codes stop working, and they sign in with their password alone, or set it up again at their next sign-in when
   * it is required of them. Sessions are left alone, as Keycloak does; `revokeSessions` ends them too. Returns the
   * user as left, and when the app it removed had been set up (null: there was none).
   */
  async resetTwoFactor(idOrEmail: string): Promise<{ user: User; removedEnrollmentOf: Date | null }> {
    const { id } = await this.require(idOrEmail);
    // The row locked while read, so that what it says was removed is what the update removed, even when the user
    // finishes setting up an app at this very moment.
    const { user, removedEnrollmentOf } = await this.db.transaction(async (trx) => {
      const before = await trx<UserRow>('users').where({ id }).forUpdate().first('totp_enrolled_at');
      const [row] = await trx<UserRow>('users')
        .where({ id })
        .update({ totp_secret: null, totp_enrolled_at: null, totp_last_step: null, totp_recovery_codes: null, updated_at: new Date() })
        .returning('*');
      if (!before || !row) throw new NotFoundError(`no user ${id}`);
      return { user: toUser(row as UserRow), removedEnrollmentOf: before.totp_enrolled_at };
    });
    this.#record('user_totp_reset', user, { wasEnrolled: removedEnrollmentOf !== null });
    return { user, removedEnrollmentOf };
  }

  /**
   * Deletes the user (the right to erasure): the row, with it their passkeys and pending mailed links, and their
   * consents and refresh tokens in the same transaction; then their sessions, whose apps are sent logout tokens.
   * Opaque access tokens die with their grants; a JWT access token an API checks offline lives out its few minutes.
   * The audit log keeps its events (with the id) until AUDIT_RETENTION. `by` names who asked (`self` from the
   * account page, else this repository's actor).
   */
  async remove(idOrEmail: string): Promise<User> {
    const user = await this.require(idOrEmail);
    await this.db.transaction(async (trx) => {
      await deleteAccountRecords(trx, user.id);
      // `returning` rather than the row count, which the embedded driver does not report.
      const deleted = await trx('users').where({ id: user.id }).delete().returning('id');
      if (deleted.length === 0) throw new NotFoundError(`no user ${idOrEmail}`);
    });
    // As after a password change: the deleted account already refuses these sessions, so an outage here must not fail it.
    await this.#sessions?.endAll(user.id).catch(() => undefined);
    this.#record('user_deleted', user, { email: user.email });
    return user;
  }

  /** Log out everywhere: ends every session, consent, refresh token and opaque access token of the user. */
  async revokeSessions(idOrEmail: string): Promise<User> {
    const user = await this.require(idOrEmail);
    const updated = await this.#revokeEverything(user.id, {});
    this.#record('user_sessions_revoked', updated);
    return updated;
  }

  /**
   * Deletes the user's grants (and with them every token issued under them: the provider refuses a token whose
   * grant is gone) and refresh tokens, and marks the moment so that any session still around is refused when next
   * used (src/oidc/accounts.ts). The sessions themselves are then removed, so that listings show none.
   */
  async #revokeEverything(id: string, changes: Partial<UserRow>, alsoWithin?: (trx: Database) => Promise<void>): Promise<User> {
    const user = await this.db.transaction(async (trx) => {
      await alsoWithin?.(trx);
      await deleteAccountRecords(trx, id);
      const [row] = await trx<UserRow>('users')
        .where({ id })
        .update({ ...changes, sessions_revoked_at: new Date(), updated_at: new Date() })
        .returning('*');
      if (!row) throw new NotFoundError(`no user ${id}`);
      return toUser(row as UserRow);
    });
    // Tidying only: the mark above already refuses these sessions, so a store outage here must not fail the change.
    await this.#sessions?.endAll(id).catch(() => undefined);
    return user;
  }

  async #update(id: string, changes: Partial<UserRow>, db: Database = this.db): Promise<User> {
    const [row] = await db<UserRow>('users')
      .where({ id })
      .update({ ...changes, updated_at: new Date() })
      .returning('*');
    if (!row) throw new NotFoundError(`no user ${id}`);
    return toUser(row as UserRow);
  }
}
