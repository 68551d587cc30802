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
      if (!mail) return;
      await this.transport.send(mail);
      this.#record(mail, 'success');
    } catch (error) {
      this.logger.error({ err: error, kind: mail?.kind }, mail ? 'a mail could not be sent' : 'a mail could not be composed');
      if (mail) this.#record(mail, 'failure', { reason: 'not_sent', message: (error as Error).message?.slice(0, 200) });
    }
  }

  #record(mail: OutgoingMail, outcome: 'success' | 'failure', detail: Record<string, unknown> = {}): void {
    this.audit.record({ type: 'mail_sent', outcome, accountId: mail.accountId, detail: { kind: mail.kind, to: mail.to, ...detail } });
  }
}
