/** A new link sent by mail (src/accounts/email-links.ts) in the mail that carries it, for pages, admin API and CLI. */
import type { EmailLinkPurpose, EmailLinks } from '../accounts/email-links.js';
import type { User } from '../accounts/users.js';
import type { AuditSink } from '../audit/audit-log.js';
import { ConflictError } from '../errors.js';
import { describeWait } from '../security/failure-limiter.js';
import { type LinkMail, emailChangeMail, emailConfirmationMail, passwordResetMail } from './messages.js';
import type { MailMessage } from './transport.js';
import type { MailOutbox, OutgoingMail } from './outbox.js';

/** Where each kind of link leads: the page that takes its secret (src/self-service/email-link-pages.ts). */
const PAGES: Record<EmailLinkPurpose, string> = {
  password_reset: '/account/password-reset/new',
  email_confirmation: '/account/email/confirm',
  email_change: '/account/email/change/confirm',
};

const MAILS: Record<EmailLinkPurpose, (mail: LinkMail) => MailMessage> = {
  password_reset: passwordResetMail,
  email_confirmation: emailConfirmationMail,
  email_change: emailChangeMail,
};

/**
 * Issues a link of `purpose` for the user and writes its mail, to `sendTo` (the user's address, or for
 * `email_change` the new one).
 */
export async function linkMailFor(
  links: EmailLinks,
  issuer: string,
  user: { id: string; email: string },
  purpose: EmailLinkPurpose,
  options: { byAdministrator?: boolean; sendTo?: string } = {},
): Promise<{ mail: OutgoingMail; expiresAt: Date }> {
  const to = options.sendTo ?? user.email;
  const { token, expiresAt } = await links.issue({ id: user.id, email: to }, purpose);
  const link = `${issuer}${PAGES[purpose]}?token=${token}`;
  const content = { to, issuer, link, validFor: describeWait(links.ttlSeconds * 1000), byAdministrator: options.byAdministrator ?? false, account: user.email };
  return { mail: { ...MAILS[purpose](content), kind: purpose, accountId: user.id }, expiresAt };
}

/**
 * A link sent to a user on an administrator's word (admin API, CLI), as Keycloak's "send email" actions do: sent
 * at once, so the administrator learns whether the relay took it, and worded as the administrator's (a password
 * link to a user created without one is their invitation). Refused for a disabled user, for an address already
 * confirmed, and when this server sends no mail.
 */
export class LinkMailSender {
  constructor(
    private readonly deps: { links: EmailLinks; issuer: string; outbox?: MailOutbox; audit: AuditSink; actor: string },
  ) {}

  /** Whether this server sends mail at all (SMTP_URL, or the log in development). */
  get sendsMail(): boolean {
    return this.deps.outbox !== undefined;
  }

  async send(user: User, purpose: Exclude<EmailLinkPurpose, 'email_change'>): Promise<{ sentTo: string; expiresAt: Date }> {
    const { outbox, audit, actor } = this.deps;
    if (!outbox) throw new ConflictError('this server sends no mail: set SMTP_URL');
    if (user.disabledAt) throw new ConflictError(`${user.email} is disabled: enable the user first`);
    if (purpose === 'email_confirmation' && user.emailVerified) throw new ConflictError(`the address ${user.email} is confirmed already`);
    const { mail, expiresAt } = await linkMailFor(this.deps.links, this.deps.issuer, user, purpose, { byAdministrator: true });
    audit.record({ type: 'email_link_requested', outcome: 'success', accountId: user.id, detail: { purpose, email: user.email, by: actor } });
    await outbox.send(mail);
    return { sentTo: user.email, expiresAt };
  }
}
