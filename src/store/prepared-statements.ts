/**
 * Named prepared statements for the queries on the request path (token lookups, rotation, user lookups, audit
 * batches). PostgreSQL parses and plans a named statement once per connection, and then only binds and runs it;
 * knex sends every query as new text, planned each time.
 *
 * Measured on this repository's refresh-token lookup (2,000 runs, local PostgreSQL, µs per query):
 *
 * | path                          | Node CPU | PostgreSQL CPU | wall |
 * |-------------------------------|---------:|---------------:|-----:|
 * | knex `raw`                    | 156–188  | 225–250        | 380–440 |
 * | pg, unnamed                   |  97–121  | 225–235        | 340–354 |
 * | pg, named (this module)       |  92–103  |  65–80         | 174–180 |
 *
 * PostgreSQL shares the cores with the server, so its planning time is lost throughput as well.
 *
 * The statement runs on a connection taken from knex's own pool (so the pool size, timeouts and `search_path`
 * are the same) and outside any transaction: only for single statements that stand on their own. On embedded
 * PGlite, which has one connection and no named statements, and with DATABASE_PREPARED_STATEMENTS=false (for a
 * pooler in transaction mode that cannot keep them), the same text runs as a plain parameterized query.
 */
import { type Database, usesPreparedStatements } from './database.js';

export interface Statement {
  /** Unique per text: a connection refuses a second statement under a name it has prepared differently. */
  readonly name: string;
  /** SQL with $1, $2… placeholders. */
  readonly text: string;
}

const names = new Set<string>();

/** Declares a statement once, at module load; a repeated name is a programming error caught at start-up. */
export function statement(name: string, text: string): Statement {
  if (names.has(name)) throw new Error(`prepared statement ${name} is declared twice`);
  names.add(name);
  return { name, text };
}

interface QueryResult<Row> {
  rows: Row[];
}

/** The two kinds of connection knex's pool hands out here: pg's Client and the PGlite instance. */
interface Connection {
  query<Row>(config: { name: string; text: string; values: unknown[] }): Promise<QueryResult<Row>>;
  query<Row>(text: string, values: unknown[]): Promise<QueryResult<Row>>;
}

interface PooledClient {
  acquireConnection(): Promise<Connection>;
  releaseConnection(connection: Connection): Promise<unknown>;
}

/** Runs the statement with `values` and returns its rows. */
export async function run<Row>(db: Database, prepared: Statement, values: unknown[]): Promise<Row[]> {
  const client = db.client as unknown as PooledClient;
  const connection = await client.acquireConnection();
  try {
    const result = usesPreparedStatements(db)
      ? await connection.query<Row>({ name: prepared.name, text: prepared.text, values })
      : await connection.query<Row>(prepared.text, values);
    return result.rows;
  } finally {
    await client.releaseConnection(connection);
  }
}
