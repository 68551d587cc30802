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
 * are the same) and outside any transaction: only for single statements that stand on their own, but for
 * `runInTransaction`, which holds one connection for a few. On embedded
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
    return await send<Row>(db, connection, prepared, values);
  } finally {
    await client.releaseConnection(connection);
  }
}

export type RunInTransaction = <Row>(prepared: Statement, values: unknown[]) => Promise<Row[]>;

/**
 * Runs `work`'s statements on one connection in one transaction: committed when it resolves, rolled back when it
 * throws. For the rare path whose statements must see each other's effects: under READ COMMITTED each statement
 * reads what was committed when it began, so a lock taken by one is followed by a read that sees its holder's work.
 */
export async function runInTransaction<T>(db: Database, work: (query: RunInTransaction) => Promise<T>): Promise<T> {
  const client = db.client as unknown as PooledClient;
  const connection = await client.acquireConnection();
  try {
    await connection.query('begin', []);
    const result = await work((prepared, values) => send(db, connection, prepared, values));
    await connection.query('commit', []);
    return result;
  } catch (error) {
    await connection.query('rollback', []).catch(() => undefined);
    throw error;
  } finally {
    await client.releaseConnection(connection);
  }
}

async function send<Row>(db: Database, connection: Connection, prepared: Statement, values: unknown[]): Promise<Row[]> {
  const result = usesPreparedStatements(db)
    ? await connection.query<Row>({ name: prepared.name, text: prepared.text, values })
    : await connection.query<Row>(prepared.text, values);
  return result.rows;
}
