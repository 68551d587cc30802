/**
 * What a CLI command works on: the same configuration and stores as the server, opened on first use and closed
 * when the command ends. Commands that only touch keys/ never open the database. Sessions a command ends are
 * announced to their clients before it ends (./logout-tokens.ts).
 */
import { type Services, closeServices, openServices } from '../services.js';
import { type Config, loadConfig } from '../config.js';
import { cliLogoutTokens } from './logout-tokens.js';

export class CliContext {
  #config: Config | undefined;
  #services: Promise<Services> | undefined;

  get config(): Config {
    this.#config ??= loadConfig(process.env);
    return this.#config;
  }

  services(): Promise<Services> {
    this.#services ??= openServices(this.config, { actor: 'cli', sessionEndListener: cliLogoutTokens(this.config, () => this.services()) });
    return this.#services;
  }

  async close(): Promise<void> {
    if (this.#services) await closeServices(await this.#services);
  }
}
