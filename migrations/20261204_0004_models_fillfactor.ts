/**
 * Leaves 15 % of each new `oidc_models` page free, so that consuming a refresh token (every rotation) finds room
 * beside the row it replaces. The consume sets `consumed_at` alone, which no index reads, so with room on the page
 * PostgreSQL makes it a HOT update and writes no index entry; on a full page it had to add one to the primary key,
 * the `grant_id` index and the expiry index, as an insert does, and leave the old ones for vacuum. (Updates of
 * `payload`, such as a grant's, cannot be HOT whatever the room: the client index reads the payload.)
 *
 * pgbench on a copy of the benchmark's refresh-token pool (`ROTATION_FILLFACTORS="100 85" bash
 * bench/pgbench/rotation.sh max max 900 900`, 8 clients, alternated): every consume HOT, against 50–62 % flat out
 * and 27–28 % at 900 rotations/s on full pages. PostgreSQL's CPU per rotation moved within the machine's noise
 * (717–815 against 760–785 µs in one hour, 480–538 against 506–562 in another), so the gain is the index
 * entries not written and not left for vacuum: on full pages every consume adds three. Only pages written from
 * now on keep the room; `vacuum full` or pg_repack rewrites the existing ones, if wanted.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table oidc_models set (fillfactor = 85)');
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
