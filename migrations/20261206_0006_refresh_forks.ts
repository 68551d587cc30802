/**
 * Lets a refresh token's rotation find its siblings: the tokens minted from the same predecessor inside the reuse
 * grace window (src/store/refresh-token-adapter.ts). `rotated_from` is the predecessor's storage id, written by the
 * insert that rotates; `fork` is null for a token without siblings, 'forked' once a second successor of its
 * predecessor was minted in the window, and 'pruned' for a sibling consumed because another one was used. Both are
 * nullable without a default, so adding them rewrites no row (PostgreSQL and PGlite), and no index reads them, so
 * the consume stays a HOT update (20261204_0004_models_fillfactor).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table oidc_models add column rotated_from text, add column fork text');
  await knex.raw(`alter table oidc_models add constraint oidc_models_fork_check check (fork in ('forked', 'pruned'))`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
