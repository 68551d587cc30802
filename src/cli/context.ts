/**
 * What a CLI command works on: the same configuration and stores as the server, opened on first use and closed
 * when the command ends. Commands that only touch keys/ never open the database. Sessions a command ends are
 * announced to their clients before it ends (./logout-tokens.ts).
 */
import { type Services, closeServices, openServices } from '../services.js';
import { type Config, loadConfig } from '../config.js';
import { LinkMailSender } from '../mail/link-mails.js';
import { MailOutbox } from '../mail/outbox.js';
import { type MailMessage, type MailTransport, createMailTransport } from '../mail/transport.js';
import { createLogger } from '../logger.js';
import { cliLogoutTokens } from './logout-tokens.js';

/** Without SMTP_URL in development, the mail the command would have sent, printed instead. */
const printMail = ({ to, subject, text }: MailMessage) =>
  process.stdout.write(`SMTP_URL is not set: this mail was not sent, it is printed here instead\nTo: ${to}\nSubject: ${subject}\n\n${text}\n`);

export class CliContext {
  #config: Config | undefined;
  #services: Promise<Services> | undefined;
  #mailTransport: MailTransport | undefined;

  get config(): Config {
    this.#config ??= loadConfig(process.env);
    return this.#config;
  }

  services(): Promise<Services> {
    this.#services ??= openServices(this.config, { actor: 'cli', sessionEndListener: cliLogoutTokens(this.config, () => this.services()) });
    return this.#services;
  }

  /** Sends links by mail as the server does, at once, audited `by: cli`. */
  async linkMails(): Promise<LinkMailSender> {
    const services = await this.services();
    this.#mailTransport ??= createMailTransport(this.config.mail, printMail);
    const outbox = this.#mailTransport && new MailOutbox(this.#mailTransport, services.audit, createLogger('silent', this.config.production));
    return new LinkMailSender({ links: services.emailLinks, issuer: this.config.issuer, outbox, audit: services.audit, actor: 'cli' });
  }

  async close(): Promise<void> {
    this.#mailTransport?.close();
    if (this.#services) await closeServices(await this.#services);
  }
}
