/**
 * Groups (Keycloak's groups): a named set of roles that users belong to. A user's roles in tokens are their own
 * and those of their groups, so that a team's access is given and taken in one place, and a person's follows the
 * teams they join and leave. Membership is named on the users row (`users.groups`, as `roles` are), and the
 * groups table is small, so it is kept whole in process (read at start, again every CLIENT_CACHE_TTL_MS but at
 * most once a second, and at once after a change made through this process): a token request reads the user and
 * nothing more, and the roles a user holds are known without waiting (two-step verification asks for them in many
 * places).
 *
 * A name may hold "/" (Keycloak's subgroup paths, `staff/admins`), which is only part of the name here: a group
 * has no parent whose roles it inherits (the Keycloak import gives each subgroup its parents' roles).
 */
import { z } from 'zod';
import type { AuditSink } from '../audit/audit-log.js';
import { ConflictError, InputError, NotFoundError, parseInput } from '../errors.js';
import { type Database, isUniqueViolation } from '../store/database.js';
import { roleName } from './roles.js';

/** Parts separated by "/", each with no control characters and no space at either end (Keycloak's names fit). */
const isGroupName = (name: string) => name.split('/').every((part) => part !== '' && part === part.trim() && !/\p{Cc}/u.test(part));

export const groupName = z
  .string()
  .max(128, 'a group name is at most 128 characters')
  .refine(isGroupName, 'a group name is one or more parts separated by "/", each with no control characters and no space at either end');

export interface Group {
  name: string;
  description: string | null;
  /** What every member holds, besides their own roles. */
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
}

interface GroupRow {
  name: string;
  description: string | null;
  roles: string[];
  created_at: Date;
  updated_at: Date;
}

const description = z.string().trim().max(500);
const roles = z.array(roleName).max(100);

export const newGroupSchema = z.strictObject({
  name: groupName,
  description: description.optional(),
  roles: roles.default([]).meta({ description: 'what every member holds, besides their own roles' }),
});
export type NewGroup = z.input<typeof newGroupSchema>;

export const groupChangesSchema = z.strictObject({
  description: description.nullable().optional().meta({ description: 'null removes it' }),
  roles: roles.optional().meta({ description: 'replaces the list; members hold the new roles in their next tokens' }),
});
export type GroupChanges = z.input<typeof groupChangesSchema>;

/** A member as a group lists it. */
export interface GroupMember {
  id: string;
  email: string;
  name: string | null;
}

/** Refuses names that are no group, naming them: a typo must not leave someone outside the team they were put in. */
export async function requireGroupsExist(db: Database, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const found = new Set((await db('groups').whereIn('name', [...new Set(names)]).pluck('name')) as string[]);
  const missing = names.filter((name) => !found.has(name));
  if (missing.length > 0) throw new InputError(`groups: no group named ${missing.join(', ')}: create it first (\`authz groups add\`)`);
}

const memberPage = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(1000), after: z.uuid({ error: 'the cursor is a user id' }).optional() });

const toGroup = (row: GroupRow): Group => ({
  name: row.name,
  description: row.description,
  roles: row.roles ?? [],
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export interface GroupRepositoryOptions {
  audit?: AuditSink;
  actor?: string;
  /** How long the groups read are used before they are read again (CLIENT_CACHE_TTL_MS). */
  cacheTtlMs: number;
}

/** The shortest wait between two reads of the groups for the changes other instances make. */
const MIN_REFRESH_MS = 1000;

/** The groups' roles in hand, shared by a repository and those acting for someone else through it. */
class RolesInHand {
  byGroup: ReadonlyMap<string, readonly string[]> = new Map();
  refresh?: NodeJS.Timeout;
}

export class GroupRepository {
  readonly #audit?: AuditSink;
  readonly #actor: string;
  readonly #ttlMs: number;
  readonly #inHand: RolesInHand;

  constructor(
    private readonly db: Database,
    options: GroupRepositoryOptions,
    inHand = new RolesInHand(),
  ) {
    this.#audit = options.audit;
    this.#actor = options.actor ?? 'server';
    this.#ttlMs = options.cacheTtlMs;
    this.#inHand = inHand;
  }

  /** The same groups, with changes audited as made by `actor` (the admin API): what one changes, both see at once. */
  actingAs(options: { audit?: AuditSink; actor: string }): GroupRepository {
    return new GroupRepository(this.db, { ...options, cacheTtlMs: this.#ttlMs }, this.#inHand);
  }

  #record(type: string, name: string, detail: Record<string, unknown> = {}): void {
    this.#audit?.record({ type, outcome: 'success', detail: { by: this.#actor, group: name, ...detail } });
  }

  /** Reads every group's roles (at start, and after a change made here). */
  async load(): Promise<void> {
    const rows = (await this.db<GroupRow>('groups').select('name', 'roles')) as Pick<GroupRow, 'name' | 'roles'>[];
    this.#inHand.byGroup = new Map(rows.map((row) => [row.name, row.roles ?? []]));
  }

  /**
   * Reads them again every `cacheTtlMs`, for the changes other instances make, but at most once a second (a
   * CLIENT_CACHE_TTL_MS of 0, which reads clients anew on every request, would otherwise read the groups without
   * pause); a failed read keeps the groups in hand (told to `onError`) until the next one.
   */
  startRefreshing(onError: (error: unknown) => void): void {
    this.#inHand.refresh ??= setInterval(() => this.load().catch(onError), Math.max(this.#ttlMs, MIN_REFRESH_MS));
    this.#inHand.refresh.unref();
  }

  close(): void {
    clearInterval(this.#inHand.refresh);
    this.#inHand.refresh = undefined;
  }

  /** A user's roles in tokens: their own, then those their groups give, each once. */
  effectiveRoles(user: { roles: readonly string[]; groups: readonly string[] }): string[] {
    if (user.groups.length === 0) return [...user.roles];
    return [...new Set([...user.roles, ...user.groups.flatMap((group) => this.#inHand.byGroup.get(group) ?? [])])];
  }

  /** The user's groups that exist (one removed a moment ago, elsewhere, may still be named on the row). */
  existingGroups(user: { groups: readonly string[] }): string[] {
    return user.groups.filter((group) => this.#inHand.byGroup.has(group));
  }

  async create(input: NewGroup): Promise<Group> {
    const group = parseInput(newGroupSchema, input);
    let row: GroupRow;
    try {
      const [inserted] = (await this.db<GroupRow>('groups')
        .insert({ name: group.name, description: group.description ?? null, roles: [...new Set(group.roles)] })
        .returning('*')) as GroupRow[];
      row = inserted as GroupRow;
    } catch (error) {
      throw isUniqueViolation(error) ? new ConflictError(`a group named ${group.name} already exists`) : error;
    }
    await this.load();
    this.#record('group_created', group.name, { roles: row.roles });
    return toGroup(row);
  }

  async list(): Promise<Group[]> {
    return ((await this.db<GroupRow>('groups').orderBy('name')) as GroupRow[]).map(toGroup);
  }

  async require(name: string): Promise<Group> {
    const row = (await this.db<GroupRow>('groups').where({ name }).first()) as GroupRow | undefined;
    if (!row) throw new NotFoundError(`no group ${name}`);
    return toGroup(row);
  }

  async update(name: string, input: GroupChanges): Promise<Group> {
    const changes = parseInput(groupChangesSchema, input);
    const row: Partial<GroupRow> = {};
    if (changes.description !== undefined) row.description = changes.description;
    if (changes.roles !== undefined) row.roles = [...new Set(changes.roles)];
    if (Object.keys(row).length === 0) return this.require(name);
    const [saved] = (await this.db<GroupRow>('groups')
      .where({ name })
      .update({ ...row, updated_at: new Date() })
      .returning('*')) as GroupRow[];
    if (!saved) throw new NotFoundError(`no group ${name}`);
    await this.load();
    this.#record('group_updated', name, { fields: Object.keys(row), roles: saved.roles });
    return toGroup(saved);
  }

  /** Deletes the group and takes it off its members, in one transaction. Returns how many members it had. */
  async remove(name: string): Promise<{ members: number }> {
    const members = await this.db.transaction(async (trx) => {
      const deleted = await trx('groups').where({ name }).delete();
      if (deleted === 0) throw new NotFoundError(`no group ${name}`);
      const updated = await trx('users')
        .whereRaw('groups @> array[?]::text[]', [name])
        .update({ groups: trx.raw('array_remove(groups, ?)', [name]), updated_at: new Date() });
      return Number(updated);
    });
    await this.load();
    this.#record('group_removed', name, { members });
    return { members };
  }

  /** The group's members, by id, a page at a time (`after`: the last id of the previous page). */
  async members(name: string, options: { limit?: number | string; after?: string } = {}): Promise<GroupMember[]> {
    const page = parseInput(memberPage, options);
    await this.require(name);
    return (await this.db('users')
      .select('id', 'email', 'name')
      .whereRaw('groups @> array[?]::text[]', [name])
      .modify((query) => {
        if (page.after) query.where('id', '>', page.after);
      })
      .orderBy('id')
      .limit(page.limit)) as GroupMember[];
  }
}
