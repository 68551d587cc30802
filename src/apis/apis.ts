/**
 * The `apis` table: resource servers (RFC 8707) that accept our access tokens. Each has an indicator (an
 * absolute URI, the tokens' `aud`), the scopes it understands, the lifetime of its tokens and their format:
 * `jwt` (RFC 9068, validated offline from JWKS, signed RS256 or the API's `signingAlg`) or `opaque` (validated by
 * introspection). At most one is the default, used when a client-credentials request names no resource.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import { MAX_API_TOKEN_TTL } from '../config.js';
import type { AuditSink } from '../audit/audit-log.js';
import { ConflictError, InputError, NotFoundError, parseInput } from '../errors.js';
import { type KeysLocation, SIGNING_ALG, SIGNING_ALGS, SIGNING_ALGS_IN_WORDS, type SigningAlg, missingKeyProblem } from '../keys/signing-keys.js';
import { OIDC_SCOPES } from '../oidc/scopes.js';
import { type Database, isUniqueViolation } from '../store/database.js';

export const TOKEN_FORMATS = ['jwt', 'opaque'] as const;

export interface ApiRecord {
  id: string;
  indicator: string;
  name: string;
  scopes: string[];
  /** Seconds. */
  accessTokenTtl: number;
  accessTokenFormat: (typeof TOKEN_FORMATS)[number];
  /** What signs its JWT access tokens. */
  signingAlg: SigningAlg;
  isDefault: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface ApiRow {
  id: string;
  indicator: string;
  name: string;
  scopes: string[];
  access_token_ttl: number;
  access_token_format: ApiRecord['accessTokenFormat'];
  signing_alg: SigningAlg;
  is_default: boolean;
  created_at: Date;
  updated_at: Date;
}

/**
 * An indicator is an http(s) URI written as URL writes it (scheme and host in lower case, no default port).
 * It is refused, not rewritten, when written otherwise: it is the `resource` clients send and the `aud` the
 * API checks, both compared as strings, so the stored value must be exactly the one the operator uses; and
 * `HTTPS://API.EXAMPLE.COM` cannot then sit beside `https://api.example.com` as a second API.
 */
const indicator = z.string().superRefine((value, ctx) => {
  const url = URL.parse(value);
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(value)?.[0];
  if (!url || !authority) ctx.addIssue({ code: 'custom', message: `${value} is not an absolute URI (scheme://host…)` });
  else if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: `${value} must be an http or https URI` });
  else if (url.hash || value.includes('#')) ctx.addIssue({ code: 'custom', message: `${value} must not contain a fragment (RFC 8707)` });
  else if (authority !== `${url.protocol}//${url.host}`) {
    ctx.addIssue({ code: 'custom', message: `${value} must be written ${url.protocol}//${url.host}${value.slice(authority.length)} (lower-case scheme and host, no default port)` });
  }
});

const apiScope = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope holds no spaces, quotes or backslashes')
  .refine((scope) => !OIDC_SCOPES.includes(scope), { error: (issue) => `${issue.input} is an OpenID Connect scope, not an API scope` });

const apiName = z.string().trim().min(1, 'an API needs a name').max(200);
const apiScopes = z.array(apiScope).max(200);
const accessTokenTtl = z
  .number()
  .int()
  .min(60, 'access tokens live at least 60 seconds')
  .max(MAX_API_TOKEN_TTL, `access tokens live at most ${MAX_API_TOKEN_TTL} seconds (24 h): keys outlive the tokens they sign by that much`);
const accessTokenFormat = z.enum(TOKEN_FORMATS, { error: 'format must be jwt or opaque' });
const signingAlg = z.enum(SIGNING_ALGS, { error: `signingAlg must be ${SIGNING_ALGS_IN_WORDS}` }).meta({
  description: 'what signs its JWT access tokens: RS256, or PS256, ES256 or EdDSA where keys/ holds a key for it (`authz keys rotate --alg <alg>`); FAPI 2.0 APIs take PS256, ES256 or EdDSA',
});

export const newApiSchema = z.strictObject({
  indicator,
  name: apiName,
  scopes: apiScopes.default([]),
  accessTokenTtl: accessTokenTtl.optional(),
  accessTokenFormat: accessTokenFormat.default('jwt'),
  signingAlg: signingAlg.default(SIGNING_ALG),
  isDefault: z.boolean().default(false),
});

export type NewApi = z.input<typeof newApiSchema>;

/** What can change on a registered API: everything but its indicator, which is the `aud` of its tokens. */
export const apiChangesSchema = z.strictObject({
  name: apiName.optional(),
  scopes: apiScopes.optional().meta({ description: 'replaces the list' }),
  accessTokenTtl: accessTokenTtl.optional(),
  accessTokenFormat: accessTokenFormat.optional(),
  signingAlg: signingAlg.optional(),
  isDefault: z.boolean().optional(),
});

export type ApiChanges = z.input<typeof apiChangesSchema>;


/**
 * Writes to `apis` take this lock first, so two concurrent writes (the same indicator, or two new defaults)
 * run one after the other and the second sees the first instead of failing on a unique index. The table is
 * tiny and rarely written; readers are not blocked.
 */
const lockApis = (trx: Knex.Transaction) => trx.raw('lock table apis in share row exclusive mode');

function toRecord(row: ApiRow): ApiRecord {
  return {
    id: row.id,
    indicator: row.indicator,
    name: row.name,
    scopes: row.scopes ?? [],
    accessTokenTtl: row.access_token_ttl,
    accessTokenFormat: row.access_token_format,
    signingAlg: row.signing_alg,
    isDefault: row.is_default,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface ApiRepositoryOptions {
  defaultAccessTokenTtl: number;
  audit?: AuditSink;
  actor?: string;
  /**
   * APIs this server itself depends on (the admin API): they can be neither changed nor removed here, through
   * the CLI or the admin API alike, since a change (say, opaque tokens) would lock every administrator out.
   */
  protectedIndicators?: readonly string[];
  /** Where the signing keys are, to refuse a signingAlg no key signs with; unset: not checked. */
  signingKeys?: KeysLocation;
}

/** The options a server's configuration gives a repository acting for `actor` (the server, the CLI, the admin API). */
export function apiRepositoryOptions(
  config: { ttl: { apiAccessToken: number }; keys: KeysLocation },
  audit: AuditSink,
  actor: string,
  protectedIndicators: readonly string[],
): ApiRepositoryOptions {
  return {
    defaultAccessTokenTtl: config.ttl.apiAccessToken,
    audit,
    actor,
    protectedIndicators,
    signingKeys: { dir: config.keys.dir, passphrase: config.keys.passphrase },
  };
}

export class ApiRepository {
  readonly #defaultTtl: number;
  readonly #audit?: AuditSink;
  readonly #actor: string;
  readonly #protected: ReadonlySet<string>;
  readonly #signingKeys?: KeysLocation;

  constructor(
    private readonly db: Database,
    options: ApiRepositoryOptions,
  ) {
    this.#defaultTtl = Math.min(options.defaultAccessTokenTtl, MAX_API_TOKEN_TTL);
    this.#audit = options.audit;
    this.#actor = options.actor ?? 'server';
    this.#protected = new Set(options.protectedIndicators ?? []);
    this.#signingKeys = options.signingKeys;
  }

  /** Refuses an algorithm that no key in keys/ signs with: the API's first token would be refused. */
  async #checkSigningAlg(alg: SigningAlg | undefined): Promise<void> {
    const problem = alg && this.#signingKeys && (await missingKeyProblem(alg, this.#signingKeys, 'API'));
    if (problem) throw new InputError(`signingAlg: ${problem}`);
  }

  #refuseProtected(value: string, action: 'changed' | 'removed'): void {
    if (this.#protected.has(value)) throw new InputError(`the admin API itself cannot be ${action}`);
  }

  #record(type: string, indicator: string, detail: Record<string, unknown> = {}): void {
    this.#audit?.record({ type, outcome: 'success', detail: { by: this.#actor, indicator, ...detail } });
  }

  async create(input: NewApi): Promise<ApiRecord> {
    const api = parseInput(newApiSchema, input);
    await this.#checkSigningAlg(api.signingAlg);
    const duplicate = () => new ConflictError(`an API with the indicator ${api.indicator} already exists`);
    let created: ApiRecord;
    try {
      created = await this.db.transaction(async (trx) => {
        await lockApis(trx);
        if (await trx('apis').where({ indicator: api.indicator }).first()) throw duplicate();
        // The new default replaces the old one in the same transaction (a unique index allows only one).
        if (api.isDefault) await trx('apis').where({ is_default: true }).update({ is_default: false, updated_at: new Date() });
        const [row] = await trx<ApiRow>('apis')
          .insert({
            id: randomUUID(),
            indicator: api.indicator,
            name: api.name,
            scopes: [...new Set(api.scopes)],
            access_token_ttl: api.accessTokenTtl ?? this.#defaultTtl,
            access_token_format: api.accessTokenFormat,
            signing_alg: api.signingAlg,
            is_default: api.isDefault,
          })
          .returning('*');
        return toRecord(row as ApiRow);
      });
    } catch (error) {
      // Kept although the lock makes it unlikely: a duplicate is the caller's conflict, never a 500.
      throw isUniqueViolation(error) ? duplicate() : error;
    }
    this.#record('api_created', created.indicator);
    return created;
  }

  /**
   * Changes an API. Tokens already issued keep what they were issued with; new ones follow the change once the
   * servers' caches lapse (CLIENT_CACHE_TTL_MS).
   */
  async update(value: string, input: ApiChanges): Promise<ApiRecord> {
    this.#refuseProtected(value, 'changed');
    const changes = parseInput(apiChangesSchema, input);
    await this.#checkSigningAlg(changes.signingAlg);
    const row: Partial<ApiRow> = {};
    if (changes.name !== undefined) row.name = changes.name;
    if (changes.scopes !== undefined) row.scopes = [...new Set(changes.scopes)];
    if (changes.accessTokenTtl !== undefined) row.access_token_ttl = changes.accessTokenTtl;
    if (changes.accessTokenFormat !== undefined) row.access_token_format = changes.accessTokenFormat;
    if (changes.signingAlg !== undefined) row.signing_alg = changes.signingAlg;
    if (changes.isDefault !== undefined) row.is_default = changes.isDefault;
    const updated = await this.db.transaction(async (trx) => {
      await lockApis(trx);
      const existing = await trx<ApiRow>('apis').where({ indicator: value }).forUpdate().first();
      if (!existing) throw new NotFoundError(`no API ${value}`);
      if (Object.keys(row).length === 0) return toRecord(existing);
      // As at creation: the new default replaces the old one in the same transaction.
      if (changes.isDefault) {
        await trx('apis').where({ is_default: true }).whereNot({ indicator: value }).update({ is_default: false, updated_at: new Date() });
      }
      const [saved] = await trx<ApiRow>('apis')
        .where({ indicator: value })
        .update({ ...row, updated_at: new Date() })
        .returning('*');
      return toRecord(saved as ApiRow);
    });
    if (Object.keys(row).length > 0) this.#record('api_updated', value, { fields: Object.keys(changes) });
    return updated;
  }

  async findByIndicator(value: string): Promise<ApiRecord | undefined> {
    const row = await this.db<ApiRow>('apis').where({ indicator: value }).first();
    return row ? toRecord(row) : undefined;
  }

  async findDefault(): Promise<ApiRecord | undefined> {
    const row = await this.db<ApiRow>('apis').where({ is_default: true }).first();
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<ApiRecord[]> {
    const rows = await this.db<ApiRow>('apis').orderBy('created_at').orderBy('indicator');
    return rows.map(toRecord);
  }

  async remove(value: string): Promise<void> {
    this.#refuseProtected(value, 'removed');
    const deleted = await this.db('apis').where({ indicator: value }).delete().returning('id');
    if (deleted.length === 0) throw new NotFoundError(`no API ${value}`);
    this.#record('api_removed', value);
  }
}
