/**
 * `authz identity-providers`: the providers IDENTITY_PROVIDERS_FILE lists, with the redirect URI to register at
 * each; `--check` fetches each one's discovery document, as the first sign-in with it would (a plain OAuth 2.0
 * provider's authorization endpoint, which has none).
 */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { UpstreamProviders, UpstreamSignInError } from '../federation/upstream.js';
import type { CliContext } from './context.js';
import { printJson, printTable } from './output.js';

export function registerIdentityProviderCommands(program: Command, context: CliContext): void {
  program
    .command('identity-providers')
    .description('the identity providers of IDENTITY_PROVIDERS_FILE, with the redirect URI to register at each')
    .option('--check', 'fetch each provider’s discovery document (OAuth 2.0: its authorization endpoint), as the first sign-in with it would')
    .option('--json', 'print JSON')
    .action(async (options: { check?: boolean; json?: boolean }) => {
      const { config } = context;
      const upstream = new UpstreamProviders(config.identityProviders, config.issuer, createLogger('silent', config.production));
      const rows = await Promise.all(
        upstream.list.map(async (provider) => ({
          id: provider.id,
          name: provider.name,
          type: provider.type,
          issuer: provider.issuer,
          redirectUri: upstream.redirectUri(provider),
          // Where the provider sends the browser back after signing out there (`logout`): its post-logout URI.
          ...(provider.logout ? { postLogoutRedirectUri: upstream.loggedOutUri(provider) } : {}),
          createAccounts: provider.createAccounts,
          trustEmail: provider.trustEmail,
          ...(options.check ? { discovery: await upstream.check(provider).then(() => 'ok', (error: unknown) => (error instanceof UpstreamSignInError ? error.message : String(error))) } : {}),
        })),
      );
      if (options.json) printJson(rows);
      else {
        printTable(
          rows.map(({ createAccounts, trustEmail, ...row }) => ({ ...row, 'makes accounts': createAccounts ? 'yes' : 'no', 'trusts email': trustEmail ? 'yes' : 'no' })),
          'no identity providers (IDENTITY_PROVIDERS_FILE is unset)',
        );
      }
      // A provider that did not answer fails the check (exit 1), for scripts and monitoring, as `authz doctor` does.
      const failed = rows.filter((row) => row.discovery && row.discovery !== 'ok').map((row) => row.id);
      if (failed.length > 0) throw new InputError(`identity-providers: ${failed.join(', ')} did not answer`);
    });
}
