/** `authz audit …`: reading the audit log. */
import { type Command, InvalidArgumentError } from 'commander';
import { type AuditQuery, queryAuditEvents } from '../audit/audit-query.js';
import type { StoredAuditEvent } from '../audit/audit-log.js';
import type { CliContext } from './context.js';
import { durationOption } from './options.js';
import { isoDate, printJson, printTable } from './output.js';

const row = (event: StoredAuditEvent) => ({
  at: isoDate(event.at),
  type: event.type,
  outcome: event.outcome,
  account: event.accountId,
  client: event.clientId,
  ip: event.ip,
  detail: Object.keys(event.detail ?? {}).length ? JSON.stringify(event.detail) : undefined,
});

function positiveInt(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number`);
  return number;
}

async function show(context: CliContext, query: AuditQuery, json: boolean): Promise<void> {
  // The query returns the newest first; both the table and the JSON read oldest first, as a log does.
  const events = (await queryAuditEvents((await context.services()).db, query)).reverse();
  if (json) printJson(events);
  else printTable(events.map(row), 'no audit events match');
}

export function registerAuditCommands(program: Command, context: CliContext): void {
  const audit = program.command('audit').description('the audit log: sign-ins, tokens, consents, admin changes');

  audit
    .command('tail')
    .description('the latest events, oldest first')
    .option('-n, --lines <count>', 'how many', positiveInt, 20)
    .option('--json', 'print JSON')
    .action(async (options) => show(context, { limit: options.lines }, Boolean(options.json)));

  audit
    .command('search')
    .description('events matching every filter given')
    .option('--type <type>', 'e.g. sign_in, sign_in_locked, token_issued, refresh_reuse_detected, client_auth_failed, client_auth_locked')
    .option('--user <sub>', 'the account (user id)')
    .option('--client <client-id>', 'the client')
    .option('--since <duration>', 'only this recent, e.g. 1h or 7d', durationOption)
    .option('--limit <count>', 'at most this many', positiveInt, 100)
    .option('--json', 'print JSON')
    .action(async (options) => {
      const since = options.since ? new Date(Date.now() - options.since * 1000) : undefined;
      await show(context, { type: options.type, accountId: options.user, clientId: options.client, since, limit: options.limit }, Boolean(options.json));
    });
}
