/**
 * The mail this server sends, from views/mail/: each has a subject, a plain-text body and an HTML one
 * (`<name>.subject.njk`, `.txt.njk`, `.html.njk`). The HTML is rendered with auto-escaping, as our pages are; the
 * subject and text are not escaped (they are not markup), and hold only what we wrote, the link and addresses.
 * MAIL_TEMPLATES_DIR puts a deployment's own (its name, its language) in front: a template found there is used,
 * any other comes from views/mail/.
 */
import path from 'node:path';
import nunjucks from 'nunjucks';
import { findViewsDir } from '../interaction/views.js';
import type { MailMessage } from './transport.js';

const DEFAULT_DIR = path.join(findViewsDir(), 'mail');

function environmentsFor(dirs: string[]) {
  const options = { throwOnUndefined: true };
  return {
    html: new nunjucks.Environment(new nunjucks.FileSystemLoader(dirs), { ...options, autoescape: true }),
    text: new nunjucks.Environment(new nunjucks.FileSystemLoader(dirs), { ...options, autoescape: false }),
  };
}

let environments = environmentsFor([DEFAULT_DIR]);

/**
 * Looks for mail templates in `dir` first (MAIL_TEMPLATES_DIR), for the rest of the process: one setting for every
 * mail, as the pages have one set of views. Unset: views/mail/ alone.
 */
export function useMailTemplates(dir: string | undefined): void {
  environments = environmentsFor(dir ? [dir, DEFAULT_DIR] : [DEFAULT_DIR]);
}

/** What every mail says of where it comes from and how long its link works. */
export interface LinkMail {
  to: string;
  /** The server's public address, which the mail names as the sender. */
  issuer: string;
  link: string;
  /** How long the link works, in words ("30 minutes"). */
  validFor: string;
  /** Sent by an administrator (admin API, CLI) rather than asked for by the person: the mail says so. */
  byAdministrator: boolean;
  /** For a new address: the account's address now, which the mail names. */
  account?: string;
}

const host = (issuer: string) => URL.parse(issuer)?.host ?? issuer;

/** A mail from its templates: `to` and `issuer` (the sender it names), and what else its templates show. */
function render(template: string, mail: { to: string; issuer: string } & object): MailMessage {
  const variables = { ...mail, site: host(mail.issuer) };
  const { html, text } = environments;
  // One line: a line break in a subject would start a header of its own.
  const subject = text.render(`${template}.subject.njk`, variables).replace(/\s+/g, ' ').trim();
  return { to: mail.to, subject, text: text.render(`${template}.txt.njk`, variables), html: html.render(`${template}.html.njk`, variables) };
}

export const passwordResetMail = (mail: LinkMail) => render('password-reset', mail);

export const emailConfirmationMail = (mail: LinkMail) => render('email-confirmation', mail);

export const emailChangeMail = (mail: LinkMail) => render('email-change', mail);

/** To the old address once a new one replaced it (no link): a change its owner did not make should not go unnoticed. */
export const emailChangedNotice = (mail: { to: string; issuer: string; account: string }) => render('email-changed', mail);

/**
 * To the account's address once a passkey was added: someone who had the password for a while could otherwise
 * keep a way in that outlives its change. Names the account page (no link that does anything).
 */
export function passkeyAddedNotice(mail: { to: string; issuer: string; passkey: string }): MailMessage {
  const variables = { ...mail, accountPage: `${mail.issuer}/account` };
  return render('passkey-added', variables);
}
