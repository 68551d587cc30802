/**
 * Refresh tokens in SQL, with a grace window for rotation. Every use rotates a refresh token, and presenting a
 * rotated one again revokes the grant (theft detection, RFC 9700 §4.14.2). A client whose two tabs refresh at the
 * same moment would trip that, so for REFRESH_REUSE_GRACE seconds after a rotation the just-rotated token is
 * accepted again, as long as the chain has not moved on (no newer token of the grant has been used since). What
 * it yields belongs to the same grant, so one revocation still ends it all, and each such reuse is reported.
 * After the window, reuse revokes the grant as before. A window of 0 restores strict single use.
 *
 * At most one branch lives. A token presented twice in the window has two successors (siblings), and left alone
 * both chains would live on: a thief whose replay lands in the window would hold a chain of his own that reuse
 * detection never sees. So the second successor is minted 'forked' and marks its siblings so, and the rotation of
 * a forked token consumes ('pruned') the siblings that are still unused: the branch not taken dies quietly, and
 * presenting it later is reuse, which revokes the grant. Two tabs that share storage (the last writer wins; the
 * other token is never used again) are unaffected; two tabs with storage of their own lose the grant when the
 * second one refreshes after the first. Handing both requests the same successor (idempotent replay) would spare
 * them, but only the hash of a token is stored, so the successor cannot be handed out twice. The happy path pays
 * nothing: the pruning rides in the statement that rotates and finds no sibling to prune unless the token is
 * forked, and the marking rides in the grace path's insert.
 *
 * A replay racing the owner's rotation of a sibling is settled by that sibling's row lock, which both take: the
 * grace path locks the siblings first and inserts in a statement begun after (so it sees a rotation that got the
 * lock before it, and then inserts nothing), and a rotation of a forked token prunes once more in a statement of
 * its own (so it sees a sibling inserted while it waited for the lock). Left: a sibling used in the milliseconds
 * between that rotation and its second pruning.
 *
 * A refresh takes two round trips here instead of five (src/store/request-scope.ts):
 * - `find` reads the token's grant and its user in the same query, and leaves them for the provider's Grant
 *   lookup and the account lookup (src/accounts/users.ts `findById`) that follow;
 * - `consume`, inside a request, is written by the `upsert` of the successor, in one statement: the successor is
 *   stored exactly when this request consumed its predecessor, so a lost race leaves nothing half-written.
 */
import { type AdapterPayload, errors } from 'oidc-provider';
import type { Database } from './database.js';
import { run, runInTransaction, statement } from './prepared-statements.js';
import { foundKey, leave, take } from './request-scope.js';
import { CLOCK_TOLERANCE_SECONDS, expiresIn, leaveGrant, liveWithin, RECORD_COLUMNS, SqlAdapter, TABLE, withConsumed } from './sql-adapter.js';
import { payloadFromStore, storageId } from './storage-id.js';

export interface RefreshGraceOptions {
  graceSeconds: number;
  /** Called when a rotated token is accepted again inside the window. */
  onGraceReuse?: (payload: AdapterPayload) => void;
}

/** The request-scope key of a consumption waiting for the successor's upsert. */
const PENDING_CONSUMPTION = 'RefreshToken:consume';

/** SqlAdapter's columns, then the predecessor a rotation consumed and the fork mark (see the header). */
const RECORD_COLUMNS_WITH_FORK = `${RECORD_COLUMNS.slice(0, -1)}, rotated_from, fork)`;

/** The grant's storage id computed in SQL: base64url of SHA-256, unpadded, as ./storage-id.ts computes it. */
const GRANT_STORAGE_ID = `translate(encode(sha256(convert_to(token.grant_id, 'UTF8')), 'base64'), '+/=', '-_')`;

/** The token's user: account ids are user ids (uuid); any other text matches no user instead of failing the cast. */
const USER_OF_TOKEN = `case when token.account_id ~ '^[0-9A-Fa-f-]{36}$' then token.account_id::uuid end`;

/**
 * $1: the storage id; $2: the clock tolerance in seconds (as SqlAdapter finds). The user comes as one jsonb
 * value, so that a column a later migration adds to `users` cannot change this prepared statement's result.
 */
const FIND_WITH_GRANT = statement(
  'refresh_token_find_with_grant_and_user',
  `select token.payload,
          floor(extract(epoch from token.consumed_at))::float8 as consumed,
          grant_record.payload as grant_payload,
          floor(extract(epoch from grant_record.consumed_at))::float8 as grant_consumed,
          to_jsonb(account) as account
   from ${TABLE} as token
   left join ${TABLE} as grant_record
     on grant_record.model = 'Grant'
     and grant_record.id = ${GRANT_STORAGE_ID}
     and ${liveWithin('grant_record', '$2::float8')}
   left join users as account on account.id = ${USER_OF_TOKEN}
   where token.model = 'RefreshToken' and token.id = $1
     and ${liveWithin('token', '$2::float8')}`,
);

/**
 * Consumes the predecessor ($1) and inserts the successor ($2…$8: SqlAdapter's columns from id on, then its
 * lifetime in seconds) only if that consumption happened; returns a row if so. When the predecessor is forked,
 * its unused siblings are consumed ('pruned') in the same statement; otherwise that step is skipped at once (its
 * condition is a constant of the statement, a one-time filter in the plan).
 */
const REPLACE = statement(
  'refresh_token_replace',
  `with consumed as (
     update ${TABLE} set consumed_at = now()
     where model = 'RefreshToken' and id = $1 and consumed_at is null
     returning grant_id, rotated_from, fork
   ), pruned as (
     update ${TABLE} set consumed_at = now(), fork = 'pruned'
     where (select fork = 'forked' from consumed)
       and model = 'RefreshToken' and grant_id = (select grant_id from consumed)
       and rotated_from = (select rotated_from from consumed)
       and id <> $1 and consumed_at is null
   )
   insert into ${TABLE} ${RECORD_COLUMNS_WITH_FORK}
   select 'RefreshToken', $2, $3::jsonb, $4, $5, $6, $7, ${expiresIn('$8::float8')}, null, $1, null from consumed
   returning (select fork from consumed) as predecessor_fork, (select rotated_from from consumed) as rotated_from`,
);

/**
 * The pruning of REPLACE again, as a statement of its own ($1 grant id, $2 the siblings' predecessor, $3 the
 * sibling used): REPLACE reads with the snapshot it began with, so a sibling a replay inserted while REPLACE
 * waited for the used one's lock is not among what it pruned. Run only after rotating a forked token.
 */
const PRUNE_SIBLINGS = statement(
  'refresh_token_prune_siblings',
  `update ${TABLE} set consumed_at = now(), fork = 'pruned'
   where model = 'RefreshToken' and grant_id = $1 and rotated_from = $2 and id <> $3 and consumed_at is null`,
);

/**
 * Locks the siblings ($1 grant id, $2 their predecessor) before INSERT_FORKED, in its transaction: the owner's
 * rotation of one of them, in flight, is waited for, and INSERT_FORKED, a statement begun after, sees it.
 */
const LOCK_SIBLINGS = statement(
  'refresh_token_lock_siblings',
  `select 1 from ${TABLE} where model = 'RefreshToken' and grant_id = $1 and rotated_from = $2 for update`,
);

/**
 * A second successor of an already rotated predecessor ($1), inserted in the grace window (same parameters as
 * REPLACE): it and its still unused siblings are marked 'forked', so that the first of them to be used prunes the
 * others. Nothing is inserted (no row returned) when a sibling has been used already: the chain moved on between
 * the grace check and this statement.
 */
const INSERT_FORKED = statement(
  'refresh_token_insert_forked',
  `with marked as (
     update ${TABLE} set fork = 'forked'
     where model = 'RefreshToken' and grant_id = $4 and rotated_from = $1 and consumed_at is null
   )
   insert into ${TABLE} ${RECORD_COLUMNS_WITH_FORK}
   select 'RefreshToken', $2, $3::jsonb, $4, $5, $6, $7, ${expiresIn('$8::float8')}, null, $1, 'forked'
   where not exists (
     select 1 from ${TABLE}
     where model = 'RefreshToken' and grant_id = $4 and rotated_from = $1 and consumed_at is not null
   )
   returning 1 as written`,
);

/** A rotation's two statements, in order (bench/pgbench runs them without the server). */
export const ROTATION_STATEMENTS = { find: FIND_WITH_GRANT, replace: REPLACE } as const;

interface ReplacedRow {
  /** The used token's fork mark: 'forked' when a replay in the window gave it siblings. */
  predecessor_fork: string | null;
  rotated_from: string | null;
}

interface FoundRow {
  payload: AdapterPayload;
  consumed: number | null;
  grant_payload: AdapterPayload | null;
  grant_consumed: number | null;
  account: Record<string, unknown> | null;
}

export class RefreshTokenAdapter extends SqlAdapter {
  constructor(
    private readonly database: Database,
    private readonly grace: RefreshGraceOptions,
  ) {
    super('RefreshToken', database);
  }

  override async find(id: string): Promise<AdapterPayload | undefined> {
    const payload = await this.#findWithGrant(id);
    if (!payload?.consumed || !(await this.#withinGrace(id))) return payload;
    const { consumed: _consumed, ...unconsumed } = payload;
    return unconsumed;
  }

  /** Inside a request: noted, and written by the successor's upsert (below). Elsewhere: at once. */
  override async consume(id: string): Promise<void> {
    if (!leave(PENDING_CONSUMPTION, id)) await this.#consumeNow(id);
  }

  override async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const predecessor = take<string>(PENDING_CONSUMPTION);
    if (predecessor === undefined) return super.upsert(id, payload, expiresIn);
    if (typeof expiresIn !== 'number' || payload.consumed) {
      // Not a plain successor (the provider always gives one a lifetime): the two steps, in order.
      await this.#consumeNow(predecessor);
      return super.upsert(id, payload, expiresIn);
    }
    if (await this.#replace(predecessor, id, payload, expiresIn)) return;
    // Another request consumed the predecessor first: within the window the successor is stored all the same,
    // as a sibling of the first one (forked, so that the first of them used prunes the others).
    await this.#graceOrRefuse(predecessor);
    if (!(await this.#insertForked(predecessor, id, payload, expiresIn))) throw new errors.InvalidGrant('grant already consumed');
  }

  async #replace(predecessor: string, id: string, payload: AdapterPayload, expiresIn: number): Promise<boolean> {
    const [, ...columns] = this.rowOf(id, payload);
    const [written] = await run<ReplacedRow>(this.database, REPLACE, [storageId(predecessor), ...columns, expiresIn]);
    if (written?.predecessor_fork === 'forked') {
      await run(this.database, PRUNE_SIBLINGS, [payload.grantId, written.rotated_from, storageId(predecessor)]);
    }
    return written !== undefined;
  }

  /** The successor as a sibling of the one already minted, unless one of them has been used: true when stored. */
  async #insertForked(predecessor: string, id: string, payload: AdapterPayload, expiresIn: number): Promise<boolean> {
    const [, ...columns] = this.rowOf(id, payload);
    const written = await runInTransaction(this.database, async (query) => {
      await query(LOCK_SIBLINGS, [payload.grantId, storageId(predecessor)]);
      return query(INSERT_FORKED, [storageId(predecessor), ...columns, expiresIn]);
    });
    return written.length > 0;
  }

  async #consumeNow(id: string): Promise<void> {
    try {
      await super.consume(id);
    } catch (error) {
      if (!(error instanceof errors.InvalidGrant)) throw error;
      await this.#graceOrRefuse(id);
    }
  }

  /** Two concurrent uses both read the token unconsumed; the loser of the atomic consume is let through in the window. */
  async #graceOrRefuse(id: string): Promise<void> {
    if (!(await this.#withinGrace(id))) throw new errors.InvalidGrant('grant already consumed');
    const payload = await super.find(id);
    if (payload) this.grace.onGraceReuse?.(payload);
  }

  /** The token; its grant and its user left for the lookups the provider makes next (null when there is none). */
  async #findWithGrant(id: string): Promise<AdapterPayload | undefined> {
    const [row] = await run<FoundRow>(this.database, FIND_WITH_GRANT, [storageId(id), CLOCK_TOLERANCE_SECONDS]);
    if (!row) return undefined;
    const token = withConsumed(row.payload, row.consumed);
    if (typeof token.grantId === 'string') {
      leaveGrant(token.grantId, row.grant_payload, row.grant_consumed);
    }
    if (typeof token.accountId === 'string') leave(foundKey('User', token.accountId), row.account);
    return payloadFromStore('RefreshToken', id, token);
  }

  /** Consumed (not pruned) less than the window ago, and no newer refresh token of the same grant consumed since. */
  async #withinGrace(id: string): Promise<boolean> {
    if (this.grace.graceSeconds <= 0) return false;
    const row = await this.database(`${TABLE} as token`)
      .first(this.database.raw('1 as ok'))
      .where({ 'token.model': 'RefreshToken', 'token.id': storageId(id) })
      .whereNotNull('token.consumed_at')
      // A sibling pruned because another was used was never rotated: presenting it is reuse, whenever it comes.
      .whereRaw(`token.fork is distinct from 'pruned'`)
      .where('token.consumed_at', '>', this.database.raw(`now() - ? * interval '1 second'`, [this.grace.graceSeconds]))
      .whereNotExists((newer) =>
        newer
          .select(this.database.raw('1'))
          .from(`${TABLE} as newer`)
          .where('newer.model', 'RefreshToken')
          .whereRaw('newer.grant_id = token.grant_id')
          .whereRaw('newer.consumed_at > token.consumed_at'),
      );
    return row !== undefined;
  }
}
