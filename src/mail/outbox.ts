/**
 * Mail leaves off the request path. A page that asked for a mail answers before the mail is composed and sent, so
 * it answers as fast for an address no account has as for one that has, and a slow mail server keeps no one
 * waiting. Each mail sent, or failed, is audited as `mail_sent` with its kind and recipient; a mail still on its
 * way when the server stops is waited for (`settled`).
 */
import type { AuditSink } from '../audit/audit-log.js';
import type { Logger } from '../logger.js';
import type { MailMessage, MailTransport } from './transport.js';

/** A message with what the audit log says of it. */
export interface OutgoingMail extends MailMessage {
  /** What it is for: `password_reset`, `email_confirmation`. */
  kind: string;
  accountId: string;
}

/** The relay refused a mail or could not be reached; the message says which, in the relay's words. */
export class MailNotSentError extends Error {
  override name = 'MailNotSentError';
}

export class MailOutbox {
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly transport: MailTransport,
    private readonly audit: AuditSink,
    private readonly logger: Logger,
  ) {}

  /**
   * Composes and sends in the background. `compose` looks up what it needs and returns the mail, or undefined
   * when there is none to send (it audits why itself); a failure of either is logged and audited, never thrown.
   */
  post(compose: () => Promise<OutgoingMail | undefined>): void {
    const delivery = this.#deliver(compose).finally(() => this.#pending.delete(delivery));
    this.#pending.add(delivery);
  }

  /**
   * Sends now, for a caller that reports the outcome (the admin API, the CLI): resolves once the relay took the
   * mail; a MailNotSentError otherwise. Audited as posted mail is.
   */
  async send(mail: OutgoingMail): Promise<void> {
    try {
      await this.transport.send(mail);
    } catch (error) {
      this.#record(mail, 'failure', { reason: 'not_sent', message: (error as Error).message?.slice(0, 200) });
      throw new MailNotSentError(`the mail to ${mail.to} was not sent: ${(error as Error).message}`);
    }
    this.#record(mail, 'success');
  }

  /** Resolves once every mail posted so far has been sent or has failed. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  close(): void {
    this.transport.close();
  }

  async #deliver(compose: () => Promise<OutgoingMail | undefined>): Promise<void> {
    let mail: OutgoingMail | undefined;
    try {
      mail = await compose();
      if (mail) await this.send(mail);
    } catch (error) {
      this.logger.error({ err: error, kind: mail?.kind }, mail ? 'a mail could not be sent' : 'a mail could not be composed');
    }
  }

  #record(mail: OutgoingMail, outcome: 'success' | 'failure', detail: Record<string, unknown> = {}): void {
    this.audit.record({ type: 'mail_sent', outcome, accountId: mail.accountId, detail: { kind: mail.kind, to: mail.to, ...detail } });
  }
}
