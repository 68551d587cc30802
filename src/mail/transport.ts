/**
 * How mail leaves this server: over SMTP with nodemailer (SMTP_URL), or, in development without SMTP_URL, into
 * the log, so that a newcomer can follow a password-reset link with no mail server at all.
 */
import type { Transporter } from 'nodemailer';
import type { MailConfig } from '../config.js';
import type { Logger } from '../logger.js';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailTransport {
  send(message: MailMessage): Promise<void>;
  close(): void;
}

/**
 * Shorter than nodemailer's defaults (two minutes to connect, ten to be silent), which would keep a mail, and a
 * stopping server, waiting on an unreachable mail server. Settings in SMTP_URL's query take precedence.
 */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 };

/**
 * The transport the configuration asks for; undefined when mail is off. Without SMTP_URL in development, each
 * mail goes to `writeInstead` (the server logs it; the CLI prints it).
 */
export function createMailTransport(config: MailConfig, writeInstead: (message: MailMessage) => void): MailTransport | undefined {
  if (config.transport === 'smtp' && config.smtpUrl) return smtpTransport(config.smtpUrl, config.from);
  if (config.transport === 'log') return { send: async (message) => writeInstead(message), close() {} };
  return undefined;
}

/** The server's stand-in for a mail server in development: the log, link and all. */
export const logMail =
  (logger: Logger) =>
  ({ to, subject, text }: MailMessage): void =>
    logger.info({ to, subject, text }, 'mail written to the log, not sent: SMTP_URL is not set');

/** nodemailer is loaded at the first mail, so a process that sends none (every worker, most of the time) starts without it. */
function smtpTransport(url: string, from: string): MailTransport {
  let transporter: Promise<Transporter> | undefined;
  const open = async () => (await import('nodemailer')).default.createTransport({ url, ...SMTP_TIMEOUTS }, { from });
  return {
    async send(message) {
      transporter ??= open();
      await (await transporter).sendMail(message);
    },
    close: () => void transporter?.then((opened) => opened.close()),
  };
}
