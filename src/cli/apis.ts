/** `authz apis …`: resource servers that accept our access tokens. */
import { type Command, Option } from 'commander';
import type { ApiRecord } from '../apis/apis.js';
import { SIGNING_ALGS } from '../keys/signing-keys.js';
import type { CliContext } from './context.js';
import { durationOption } from './options.js';
import { isoDate, printJson, printTable, splitList } from './output.js';

const summary = (api: ApiRecord) => ({
  indicator: api.indicator,
  name: api.name,
  scopes: api.scopes.join(' ') || undefined,
  token: `${api.accessTokenFormat === 'jwt' ? `jwt ${api.signingAlg}` : 'opaque'}, ${api.accessTokenTtl}s`,
  default: api.isDefault,
  created: isoDate(api.createdAt),
});

const SIGNING_ALG_HELP = 'what signs its JWT access tokens: RS256 (the default), or PS256, ES256 or EdDSA once keys/ holds such a key (`authz keys rotate --alg <alg>`)';
const signingAlgOption = () => new Option('--signing-alg <alg>', SIGNING_ALG_HELP).choices([...SIGNING_ALGS]);

export function registerApiCommands(program: Command, context: CliContext): void {
  const apis = program.command('apis').description('APIs (resource servers) that accept our access tokens');

  apis
    .command('add')
    .description('register an API; its indicator is the `aud` of its tokens')
    .requiredOption('--indicator <uri>', 'resource indicator, an absolute URI such as https://api.example.com')
    .requiredOption('--name <name>', 'shown on the consent page')
    .option('--scopes <scopes>', 'comma-separated scopes it understands', splitList, [])
    .option('--token-ttl <duration>', 'access-token lifetime (default API_ACCESS_TOKEN_TTL, at most 24h)', durationOption)
    .option('--format <format>', 'jwt (validated offline) or opaque (validated by introspection)', 'jwt')
    .addOption(signingAlgOption())
    .option('--default', 'use it when a client-credentials request names no resource')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const api = await (await context.services()).apis.create({
        indicator: options.indicator,
        name: options.name,
        scopes: options.scopes,
        accessTokenTtl: options.tokenTtl,
        accessTokenFormat: options.format,
        signingAlg: options.signingAlg,
        isDefault: Boolean(options.default),
      });
      if (options.json) printJson(api);
      else process.stdout.write(`registered API ${api.indicator} (${api.accessTokenFormat} tokens, ${api.accessTokenTtl}s)\n`);
    });

  apis
    .command('list')
    .description('list APIs')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const records = await (await context.services()).apis.list();
      if (options.json) printJson(records);
      else printTable(records.map(summary), 'no APIs yet: add one with `authz apis add --indicator … --name …`');
    });

  apis
    .command('update')
    .description('change an API; tokens already issued keep what they were issued with')
    .argument('<indicator>')
    .option('--name <name>', 'shown on the consent page')
    .option('--scopes <scopes>', 'the scopes it understands, comma-separated, replacing the old ones ("" for none)', splitList)
    .option('--token-ttl <duration>', 'access-token lifetime (at most 24h)', durationOption)
    .option('--format <format>', 'jwt (validated offline) or opaque (validated by introspection)')
    .addOption(signingAlgOption())
    .option('--default', 'use it when a client-credentials request names no resource')
    .option('--no-default', 'no longer the default')
    .option('--json', 'print JSON')
    .action(async (indicator: string, options) => {
      const changes = {
        name: options.name,
        scopes: options.scopes,
        accessTokenTtl: options.tokenTtl,
        accessTokenFormat: options.format,
        signingAlg: options.signingAlg,
        isDefault: options.default,
      };
      if (Object.values(changes).every((value) => value === undefined)) {
        program.error('error: nothing to change: give at least one option (see --help)', { exitCode: 2 });
      }
      const api = await (await context.services()).apis.update(indicator, changes);
      if (options.json) printJson(api);
      else process.stdout.write(`updated API ${api.indicator} (${api.accessTokenFormat} tokens, ${api.accessTokenTtl}s)\n`);
    });

  apis
    .command('remove')
    .description('delete an API (tokens already issued for it stay valid until they expire)')
    .argument('<indicator>')
    .action(async (indicator: string) => {
      await (await context.services()).apis.remove(indicator);
      process.stdout.write(`removed API ${indicator}\n`);
    });
}
