/**
 * The mail this server sends, from views/mail/: each has a plain-text body and an HTML one. The HTML is rendered
 * with auto-escaping, as our pages are; the text is not escaped (it is not markup), and holds only what we wrote,
 * the link and the user's own address.
 */
import path from 'node:path';
import nunjucks from 'nunjucks';
import { findViewsDir } from '../interaction/views.js';
import type { MailMessage } from './transport.js';

const mailViews = path.join(findViewsDir(), 'mail');
const html = new nunjucks.Environment(new nunjucks.FileSystemLoader(mailViews), { autoescape: true, throwOnUndefined: true });
const text = new nunjucks.Environment(new nunjucks.FileSystemLoader(mailViews), { autoescape: false, throwOnUndefined: true });

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

function render(template: string, subject: string, mail: Omit<LinkMail, 'link' | 'validFor' | 'byAdministrator'> & Partial<LinkMail>): MailMessage {
  const variables = { ...mail, site: host(mail.issuer) };
  return { to: mail.to, subject, text: text.render(`${template}.txt.njk`, variables), html: html.render(`${template}.html.njk`, variables) };
}

export const passwordResetMail = (mail: LinkMail) =>
  render('password-reset', `${mail.byAdministrator ? 'Choose your password' : 'Reset your password'} at ${host(mail.issuer)}`, mail);

export const emailConfirmationMail = (mail: LinkMail) => render('email-confirmation', `Confirm your email address at ${host(mail.issuer)}`, mail);

export const emailChangeMail = (mail: LinkMail) => render('email-change', `Confirm your new email address at ${host(mail.issuer)}`, mail);

/** To the old address once a new one replaced it (no link): a change its owner did not make should not go unnoticed. */
export const emailChangedNotice = (mail: { to: string; issuer: string; account: string }) =>
  render('email-changed', `Your email address at ${host(mail.issuer)} was changed`, mail);
