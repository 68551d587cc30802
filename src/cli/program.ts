/**
  * The `authz` command line: migrations, users, clients, APIs and keys.
 * A usage error prints the usage and exits 2; a refused input prints one line and exits 1; a database or Redis
 * that cannot be reached prints one line naming it and exits 75 (EX_TEMPFAIL: a script may try again later).
 * None shows a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { registerApiCommands } from './apis.js';
import { registerGroupCommands } from './groups.js';
import { registerAuditCommands } from './audit.js';
import { registerClientCommands } from './clients.js';
import { CliContext } from './context.js';
import { registerDoctorCommand } from './doctor.js';
import { registerIdentityProviderCommands } from './identity-providers.js';
import { registerIpCommands } from './ips.js';
import { registerKeyCommands } from './keys.js';
import { registerUserCommands } from './users.js';
import { registerWebhookCommands } from './webhooks.js';
import { ConfigError } from '../config.js';
import { InputError, NotFoundError } from '../errors.js';
import { MailNotSentError } from '../mail/outbox.js';
import { KeyFileError } from '../keys/signing-keys.js';
import { closeDatabase, migrate, openDatabase } from '../store/database.js';
import { describeUnreachable, isStoreOutage } from '../store/outages.js';

const USAGE_ERROR = 2;
/** sysexits.h's EX_TEMPFAIL: the command did not fail for what was asked, and may work when tried again. */
const STORE_UNREACHABLE = 75;

function buildProgram(context: CliContext): Command {
  const program = new Command('authz')
    .description('manage the authorization server: users, clients, APIs, keys')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.configureOutput({ outputError: (text, write) => write(text) });

  program
    .command('migrate')
    .description('bring the database schema up to date (the server also does this on start)')
    .action(async () => {
      const db = await openDatabase(context.config.database);
      try {
        const applied = await migrate(db);
        process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : 'the schema is up to date\n');
      } finally {
        await closeDatabase(db);
      }
    });

  registerUserCommands(program, context);
  registerGroupCommands(program, context);
  registerClientCommands(program, context);
  registerApiCommands(program, context);
  registerIpCommands(program, context);
  registerWebhookCommands(program, context);
  registerKeyCommands(program, context);
  registerAuditCommands(program, context);
  registerDoctorCommand(program, context);
  registerIdentityProviderCommands(program, context);
  for (const command of program.commands) command.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}

/** Errors whose message is meant for the operator. */
const isExpected = (error: unknown) =>
  error instanceof InputError ||
  error instanceof NotFoundError ||
  error instanceof KeyFileError ||
  error instanceof ConfigError ||
  error instanceof MailNotSentError;

export async function runCli(argv: string[]): Promise<number> {
  const context = new CliContext();
  const program = buildProgram(context);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return error.exitCode === 0 ? 0 : USAGE_ERROR;
    }
    if (isStoreOutage(error)) {
      process.stderr.write(`authz: ${describeUnreachable(error)}\n`);
      return STORE_UNREACHABLE;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`authz: ${error.problems.join('; ')}\n`);
    } else if (isExpected(error)) {
      process.stderr.write(`authz: ${(error as Error).message}\n`);
    } else {
      process.stderr.write(`authz: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
      if (process.env.AUTHZ_DEBUG) console.error(error);
    }
    return 1;
  } finally {
    await context.close().catch(() => undefined);
  }
}

