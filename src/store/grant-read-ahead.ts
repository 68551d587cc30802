/**
 * Userinfo looks up the access token's account and then its grant (oidc-provider lib/shared/access_token.js:
 * `loadAccessTokenAccount`, then `loadAccessTokenGrant`): two SQL round trips. This reads both in one statement,
 * before the account lookup, and leaves them for the two lookups that follow in the same request
 * (./request-scope.ts), as the refresh-token read does for its grant and user (./refresh-token-adapter.ts).
 */
import type { AdapterPayload } from 'oidc-provider';
import type { Database } from './database.js';
import { run, statement } from './prepared-statements.js';
import { foundKey, inRequest, leave } from './request-scope.js';
import { CLOCK_TOLERANCE_SECONDS, leaveGrant, liveWithin, TABLE } from './sql-adapter.js';
import { storageId } from './storage-id.js';

/** User ids are uuids; any other account id is left to the ordinary lookups (which find no user). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * $1: the grant's storage id; $2: the user's id; $3: the clock tolerance in seconds (as SqlAdapter finds). One row
 * whether or not either exists. The user comes as one jsonb value, so that a column a later migration adds to
 * `users` cannot change this prepared statement's result.
 */
const FIND_GRANT_AND_USER = statement(
  'grant_find_with_user',
  `select grant_record.payload as grant_payload,
          floor(extract(epoch from grant_record.consumed_at))::float8 as grant_consumed,
          (select to_jsonb(account) from users as account where account.id = $2::uuid) as account
   from (values (1)) as one
   left join ${TABLE} as grant_record
     on grant_record.model = 'Grant' and grant_record.id = $1
     and ${liveWithin('grant_record', '$3::float8')}`,
);

interface Row {
  grant_payload: AdapterPayload | null;
  grant_consumed: number | null;
  account: Record<string, unknown> | null;
}

/** Reads the grant and the user together, for the Grant and User lookups later in this request. */
export async function readGrantWithUser(db: Database, grantId: string, userId: string): Promise<void> {
  // Outside a request nothing could be left for later, and the lookups make their own queries.
  if (!inRequest() || !UUID.test(userId)) return;
  const [row] = await run<Row>(db, FIND_GRANT_AND_USER, [storageId(grantId), userId, CLOCK_TOLERANCE_SECONDS]);
  leaveGrant(grantId, row?.grant_payload ?? null, row?.grant_consumed ?? null);
  leave(foundKey('User', userId), row?.account ?? null);
}
