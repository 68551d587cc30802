/** `authz keys …`: signing keys and cookie secrets in keys/ (see keys/README.md). */
import { type Command, Option } from 'commander';
import { writeCookieSecret } from '../keys/cookie-secrets.js';
import { describeKeys, pruneKeys, rotateKey } from '../keys/rotation.js';
import { SIGNING_ALGS } from '../keys/signing-keys.js';
import type { CliContext } from './context.js';
import { durationOption } from './options.js';
import { isoDate, printJson, printTable } from './output.js';

export function registerKeyCommands(program: Command, context: CliContext): void {
  const keys = program.command('keys').description('signing keys and cookie secrets in keys/');

  keys
    .command('rotate')
    .description('add a signing key that becomes current after the activation delay')
    .option('--activate-in <duration>', 'when it starts signing (default KEY_ACTIVATION_DELAY; 0 for an emergency)', durationOption)
    .addOption(
      new Option('--alg <alg>', 'RS256: an RSA key, as every server has; PS256 (an RSA key named *-ps256), ES256 (EC P-256) or EdDSA (Ed25519): for clients registered with that --signing-alg (the first key of each signs at once)')
        .choices([...SIGNING_ALGS])
        .default('RS256'),
    )
    .option('--json', 'print JSON')
    .action(async (options) => {
      const result = await rotateKey(context.config, options.activateIn, new Date(), options.alg);
      if (result.created && result.warning) process.stderr.write(`warning: ${result.warning}\n`);
      if (options.json) return printJson({ kid: result.kid, alg: result.alg, created: result.created, activatesAt: result.activatesAt });
      if (!result.created) {
        process.stdout.write(`a key activating at ${isoDate(result.activatesAt)} already exists (${result.kid}); nothing written\n`);
        return;
      }
      process.stdout.write(`wrote ${result.kid}.pem; it is published now and signs from ${isoDate(result.activatesAt)}\n`);
    });

  keys
    .command('list')
    .description('show each key’s state (next, current, previous, expired) and when it was created, activates and retires')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const statuses = await describeKeys(context.config);
      const rows = statuses.map((status) => ({
        kid: status.kid,
        alg: status.alg ?? 'RS256',
        state: status.state,
        created: isoDate(status.createdAt),
        activates: isoDate(status.activatesAt),
        retires: isoDate(status.retiresAt),
      }));
      if (options.json) printJson(rows);
      else printTable(rows, `no keys in ${context.config.keys.dir}: create one with \`authz keys rotate --activate-in 0\``);
    });

  keys
    .command('prune')
    .description('delete the files of expired keys')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const removed = await pruneKeys(context.config);
      if (options.json) return printJson({ removed });
      process.stdout.write(removed.length ? `removed ${removed.join(', ')}\n` : 'no expired keys\n');
    });

  keys
    .command('rotate-cookie-secret')
    .description('add a cookie-signing secret; it signs from --activate-in on, older ones keep verifying')
    .option('--activate-in <duration>', 'when it starts signing (default: two KEYS_RESCAN_INTERVALs, once every process verifies it)', durationOption)
    .action(async (options) => {
      // A cookie it signs is refused by a process that has not read it yet: each rescans on its own timer.
      const rescan = context.config.keys.rescanIntervalSeconds;
      const activateIn: number = options.activateIn ?? 2 * rescan;
      const activatesAt = new Date(Math.ceil((Date.now() + activateIn * 1000) / 1000) * 1000);
      const { kid, created } = await writeCookieSecret(context.config.keys.dir, activatesAt);
      process.stdout.write(created ? `wrote ${kid}.cookie-secret; it signs from ${isoDate(activatesAt)}\n` : `${kid}.cookie-secret already exists\n`);
      if (created && activateIn < rescan) {
        process.stderr.write(
          `warning: it signs in ${activateIn}s; a process that has not rescanned keys/ by then (every ${rescan}s, or on SIGHUP) refuses the cookies it signs, and those users must sign in again\n`,
        );
      }
    });
}
