/**
 * Two-step verification with an authenticator app (TOTP, RFC 6238): src/accounts/two-factor.ts. On the users row,
 * because every sign-in reads that row anyway:
 * - `totp_required`: an administrator asks this user to set it up at their next sign-in;
 * - `totp_secret`: the shared secret, encrypted (AES-256-GCM under a key derived from the client-secret pepper,
 *   whose id it carries); null while not set up;
 * - `totp_enrolled_at`: when it was set up;
 * - `totp_last_step`: the last 30-second step a code was accepted for, so that a code works once;
 * - `totp_recovery_codes`: keyed hashes of the unused recovery codes.
 * Nullable or with a constant default, so adding them rewrites no row.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table users
    add column totp_required boolean not null default false,
    add column totp_secret text,
    add column totp_enrolled_at timestamptz,
    add column totp_last_step bigint,
    add column totp_recovery_codes text[]`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
