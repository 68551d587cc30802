/**
 * `server_settings`: values the server makes once, in a migration, and keeps for as long as its database, so that
 * every instance reads the same one and no operator has to keep it (the pairwise salt, the DPoP nonce key).
 */
import type { Database } from './database.js';

/** The value a migration stored under `name`. */
export async function readServerSetting(db: Database, name: string): Promise<string> {
  const row = await db('server_settings').where({ name }).first('value');
  if (!row) throw new Error(`server_settings has no ${name}: the database was not migrated`);
  return row.value as string;
}
