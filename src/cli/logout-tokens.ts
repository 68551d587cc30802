/**
 * Back-channel logout from the command line (`users end-session`, `revoke-sessions`, `disable`, `set-password`).
 * The CLI is a process of its own, without a server's Provider. When a session it ends had a client that
 * registered a back-channel logout URI, it builds a Provider from the same configuration, keys/ and stores as the
 * servers, so that the logout token is signed with the key they sign with, by the same code; then it waits for
 * each client's answer before the command ends. Every outcome is audited as the servers audit theirs (by `cli`)
 * and printed; a failed delivery is a warning, since the sessions did end.
 */
import type Provider from 'oidc-provider';
import type { EndedSession, SessionEndListener } from '../accounts/sessions.js';
import type { Config } from '../config.js';
import { createProviderPages, createViews } from '../interaction/index.js';
import { KeyRing } from '../keys/key-ring.js';
import { createLogger } from '../logger.js';
import { BackchannelLogoutNotifier, type DeliveryOutcome, LogoutTokenDeliveries } from '../oidc/backchannel-logout.js';
import { ClientAdapter } from '../oidc/client-adapter.js';
import { offeredOidcScopes } from '../oidc/scopes.js';
import { createProvider } from '../oidc/provider.js';
import type { Services } from '../services.js';
import { createAdapterFactory } from '../store/adapters.js';

export function cliLogoutTokens(config: Config, services: () => Promise<Services>): SessionEndListener {
  let provider: Promise<Provider> | undefined;
  return {
    async sessionsEnded(sessions: EndedSession[]): Promise<void> {
      const opened = await services();
      const notifier = new BackchannelLogoutNotifier({
        catalog: opened.catalog,
        provider: () => {
          provider ??= signingProvider(config, opened);
          return provider;
        },
        deliveries: new LogoutTokenDeliveries(opened.audit),
        actor: 'cli',
      });
      for (const outcome of await notifier.notify(sessions)) report(outcome);
    },
  };
}

function report(outcome: DeliveryOutcome): void {
  if (outcome.ok) process.stdout.write(`logout token delivered to client ${outcome.clientId}\n`);
  else process.stderr.write(`warning: logout token not delivered to client ${outcome.clientId}: ${outcome.reason}\n`);
}

/** A Provider like the servers' (same issuer, keys and client records), used only to sign and send logout tokens. */
async function signingProvider(config: Config, services: Services): Promise<Provider> {
  let keyRing: KeyRing;
  try {
    keyRing = await KeyRing.open({
      keysDir: config.keys.dir,
      passphrase: config.keys.passphrase,
      retireAfterSeconds: config.keys.retireAfterSeconds,
      staticCookieSecrets: config.cookieSecrets,
    });
  } catch (error) {
    throw new Error(`no logout token could be signed: ${(error as Error).message}`);
  }
  const { db, redis, catalog, users, clients } = services;
  return createProvider({
    config,
    adapter: createAdapterFactory({ db, redis, redisKeyPrefix: config.redis?.keyPrefix, clientAdapter: () => new ClientAdapter(catalog, offeredOidcScopes(config.claimScopes)) }),
    catalog,
    users,
    clients,
    signingKeys: keyRing.signingKeys,
    cookieSecrets: keyRing.cookieSecrets,
    pages: createProviderPages({ views: createViews(config), logger: createLogger('silent', config.production) }),
    // Logout tokens to a pairwise client name the user by its pairwise `sub`.
    pairwiseSalt: services.pairwiseSalt,
    dpopNonceSecret: services.dpopNonceSecret,
    groups: services.groups,
  });
}
