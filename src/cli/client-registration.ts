/**
 * `authz clients registration-token|registration-tokens|revoke-registration-token`: the initial access tokens
 * with which apps register themselves at /reg when CLIENT_REGISTRATION=token (or register a service with `open`).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { InputError, NotFoundError } from '../errors.js';
import type { CliContext } from './context.js';
import { durationOption } from './options.js';
import { isoDate, printJson, printTable } from './output.js';

const MAX_USES = 1000;

function usesOption(value: string): number {
  const uses = Number(value);
  if (!Number.isInteger(uses) || uses < 1 || uses > MAX_USES) throw new InvalidArgumentError(`a whole number from 1 to ${MAX_USES}`);
  return uses;
}

export function registerClientRegistrationCommands(clients: Command, context: CliContext): void {
  clients
    .command('registration-token')
    .description('an initial access token, with which apps register themselves at <issuer>/reg (RFC 7591)')
    .option('--uses <n>', 'how many apps it registers', usesOption, 1)
    .option('--expires-in <duration>', 'how long it works', durationOption, 86_400)
    .option('--json', 'print JSON')
    .action(async (options: { uses: number; expiresIn: number; json?: boolean }) => {
      if (options.expiresIn <= 0) throw new InputError('--expires-in: must be longer than 0');
      const services = await context.services();
      const { token, record } = await services.registrationTokens.createInitial({ uses: options.uses, expiresInSeconds: options.expiresIn });
      if (options.json) return printJson({ id: record.id, initial_access_token: token, uses: record.usesLeft, expires_at: isoDate(record.expiresAt) });
      process.stdout.write(`initial access token ${record.id}: ${token}\n`);
      process.stdout.write(`registers ${record.usesLeft} app${record.usesLeft === 1 ? '' : 's'} until ${isoDate(record.expiresAt)} (shown once, stored only as a hash)\n`);
      if (context.config.clientRegistration === 'off') process.stdout.write('note: CLIENT_REGISTRATION is off, so /reg is closed until you set it to token or open\n');
    });

  clients
    .command('registration-tokens')
    .description('the initial access tokens that can still register an app')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const tokens = await (await context.services()).registrationTokens.listInitial();
      const rows = tokens.map((token) => ({ id: token.id, 'uses left': token.usesLeft, expires: isoDate(token.expiresAt), 'created by': token.createdBy, created: isoDate(token.createdAt) }));
      if (options.json) printJson(tokens);
      else printTable(rows, 'no initial access tokens: make one with `authz clients registration-token`');
    });

  clients
    .command('revoke-registration-token')
    .description('delete an initial access token: it registers no more apps (those it registered stay)')
    .argument('<id>')
    .action(async (id: string) => {
      if (!(await (await context.services()).registrationTokens.revokeInitial(id))) throw new NotFoundError(`no initial access token ${id}`);
      process.stdout.write(`revoked initial access token ${id}\n`);
    });
}
