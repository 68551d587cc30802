/**
 * oidc-provider's storage contract over the `oidc_models` table, on PostgreSQL or PGlite alike.
 *
 * One row per (model, id), the id stored as its SHA-256 (./storage-id.ts: ids are token values). The payload is kept as jsonb; the columns beside it (grant_id, uid, user_code,
 * account_id) are copies of payload fields that exist only so the lookups the library makes are indexed.
 * `consumed` lives in its own column, so that consuming is one conditional UPDATE rather than a read-modify-write.
 * Expiry and consumption are stamped with the database clock, which every instance shares.
 */
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import type { Database } from './database.js';
import { run, statement } from './prepared-statements.js';
import { foundKey, leave, take } from './request-scope.js';
import { payloadFromStore, payloadToStore, storageId } from './storage-id.js';

/**
 * How long past its expiry a record is still returned: oidc-provider's default `clockTolerance`. The library
 * re-checks `exp` with this tolerance itself, so the store only has to keep records at least this long.
 */
export const CLOCK_TOLERANCE_SECONDS = 15;

export const TABLE = 'oidc_models';

const epochNow = () => Math.floor(Date.now() / 1000);

/** The condition for a record that is still returned: not expired, or expired less than $n seconds ago. */
export const liveWithin = (alias: string, seconds: string) =>
  `(${alias}.expires_at is null or ${alias}.expires_at > now() - ${seconds} * interval '1 second')`;

/** The columns of a record, in the order `rowOf` gives them, then its expiry and consumption. */
export const RECORD_COLUMNS = '(model, id, payload, grant_id, uid, user_code, account_id, expires_at, consumed_at)';

/** The expiry of a record that lives `seconds` from now (null seconds: it never expires). */
export const expiresIn = (seconds: string) => `now() + ${seconds} * interval '1 second'`;

// The statements on the request path, prepared once per connection (./prepared-statements.ts).
const UPSERT = statement(
  'oidc_models_upsert',
  `insert into ${TABLE} as record ${RECORD_COLUMNS}
   values ($1, $2, $3::jsonb, $4, $5, $6, $7, ${expiresIn('$8::float8')}, to_timestamp($9::float8))
   on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
     user_code = excluded.user_code, account_id = excluded.account_id, expires_at = excluded.expires_at,
     consumed_at = excluded.consumed_at`,
);
const FIND = statement(
  'oidc_models_find',
  `select payload, floor(extract(epoch from consumed_at))::float8 as consumed from ${TABLE} as record
   where model = $1 and id = $2 and ${liveWithin('record', '$3::float8')}`,
);
const CONSUME = statement(
  'oidc_models_consume',
  `update ${TABLE} set consumed_at = now() where model = $1 and id = $2 and consumed_at is null returning 1 as consumed`,
);
const DESTROY = statement('oidc_models_destroy', `delete from ${TABLE} where model = $1 and id = $2`);
/** Writes a record unless a live one is there (an expired one, not yet pruned, is replaced); a row when written. */
const CLAIM = statement(
  'oidc_models_claim',
  `insert into ${TABLE} as record ${RECORD_COLUMNS}
   values ($1, $2, $3::jsonb, $4, $5, $6, $7, ${expiresIn('$8::float8')}, null)
   on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = null
     where not ${liveWithin('record', '$9::float8')}
   returning 1 as claimed`,
);

/** A stored payload with its `consumed` column (epoch seconds, or null) put back. */
export const withConsumed = (payload: AdapterPayload, consumed: number | null): AdapterPayload =>
  consumed === null ? payload : { ...payload, consumed };

/** Leaves a Grant read along with another record for the Grant lookup later in this request (null: there is none). */
export function leaveGrant(grantId: string, payload: AdapterPayload | null, consumed: number | null): void {
  leave(foundKey('Grant', grantId), payload ? withConsumed(payload, consumed) : null);
}

interface Row {
  payload: AdapterPayload;
  /** consumed_at as epoch seconds, or null. */
  consumed: number | null;
}

export class SqlAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly db: Database,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const row = this.rowOf(id, payload);
    const { consumed } = payload;
    await run(this.db, UPSERT, [
      ...row,
      typeof expiresIn === 'number' ? expiresIn : null,
      consumed ? (typeof consumed === 'number' ? consumed : epochNow()) : null,
    ]);
  }

  /** The columns that store a record: model, id, payload (JSON text), grant_id, uid, user_code, account_id. */
  protected rowOf(id: string, payload: AdapterPayload): [string, string, string, ...(string | null)[]] {
    const { consumed: _consumed, ...stored } = payload;
    return [
      this.model,
      storageId(id),
      JSON.stringify(payloadToStore(this.model, id, stored)),
      payload.grantId ?? null,
      payload.uid ?? null,
      payload.userCode ?? null,
      payload.accountId ?? null,
    ];
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    // Read earlier in this request together with another record (src/store/request-scope.ts); null: not there.
    const readAlready = take<AdapterPayload | null>(foundKey(this.model, id));
    if (readAlready !== undefined) return readAlready ?? undefined;
    const [row] = await run<Row>(this.db, FIND, [this.model, storageId(id), CLOCK_TOLERANCE_SECONDS]);
    return row && payloadFromStore(this.model, id, withConsumed(row.payload, row.consumed));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findOne({ uid });
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findOne({ user_code: userCode });
  }

  /**
   * Marks the record consumed unless it already is. The library reads, checks `consumed`, then calls this, so two
   * concurrent redemptions both get here: the conditional UPDATE lets exactly one through and the other gets a
   * clean invalid_grant instead of a second set of tokens.
   */
  async consume(id: string): Promise<void> {
    const changed = await run(this.db, CONSUME, [this.model, storageId(id)]);
    if (changed.length === 0) throw new errors.InvalidGrant('grant already consumed');
  }

  async destroy(id: string): Promise<void> {
    await run(this.db, DESTROY, [this.model, storageId(id)]);
  }

  /** Stores the record unless a live one is there, in one statement: of concurrent calls exactly one gets true. */
  async claim(id: string, payload: AdapterPayload, expiresIn: number): Promise<boolean> {
    const claimed = await run(this.db, CLAIM, [...this.rowOf(id, payload), expiresIn, CLOCK_TOLERANCE_SECONDS]);
    return claimed.length > 0;
  }

  /** The live records of an account (used for sessions: the admin API and CLI list and end them). */
  async findByAccount(accountId: string): Promise<AdapterPayload[]> {
    const rows: Row[] = await this.db(TABLE)
      .select('payload', this.db.raw('floor(extract(epoch from consumed_at))::float8 as consumed'))
      .where({ model: this.model, account_id: accountId })
      .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', this.db.raw('now()')));
    return rows.map((row) => withConsumed(row.payload, row.consumed));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db(TABLE).where({ model: this.model, grant_id: grantId }).del();
  }

  private async findOne(where: { uid: string } | { user_code: string }): Promise<AdapterPayload | undefined> {
    const row: Row | undefined = await this.db(TABLE)
      .first('payload', this.db.raw('floor(extract(epoch from consumed_at))::float8 as consumed'))
      .where({ model: this.model, ...where })
      .whereRaw(liveWithin(TABLE, '?'), [CLOCK_TOLERANCE_SECONDS]);
    return row && withConsumed(row.payload, row.consumed);
  }
}
