/**
 * A real SMTP server on a free port (smtp-server, from nodemailer's authors) that keeps what it is sent, parsed
 * with mailparser: the server under test sends its mail to it over SMTP, with a user name and password, as it
 * would to a provider's relay.
 */
import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface CaughtMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailCatcher {
  /** SMTP_URL for the server under test, credentials included. */
  url: string;
  /** Every mail received so far. */
  readonly received: CaughtMail[];
  /** The next mail to `to` not yet taken; fails after `timeoutMs`. */
  next(to: string, timeoutMs?: number): Promise<CaughtMail>;
  close(): Promise<void>;
}

const USER = 'authz';
const PASSWORD = 'relay password';

const addressesOf = (field: ParsedMail['to'] | ParsedMail['from']) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((group) => group.value.map((address) => address.address ?? ''));

export async function startMailCatcher(): Promise<MailCatcher> {
  const received: CaughtMail[] = [];
  const taken = new Set<CaughtMail>();
  const waiting: (() => void)[] = [];
  const server = new SMTPServer({
    // Plain SMTP on loopback: STARTTLS would need a certificate the sender trusts.
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === USER && auth.password === PASSWORD) return callback(null, { user: USER });
      callback(new Error('wrong relay credentials'));
    },
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          received.push({
            from: addressesOf(parsed.from)[0] ?? '',
            to: addressesOf(parsed.to)[0] ?? '',
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
          });
          for (const wake of waiting.splice(0)) wake();
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;

  const take = (to: string) => {
    const mail = received.find((each) => each.to === to && !taken.has(each));
    if (mail) taken.add(mail);
    return mail;
  };
  return {
    url: `smtp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
    received,
    async next(to, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const mail = take(to);
        if (mail) return mail;
        if (Date.now() > deadline) throw new Error(`no mail to ${to} within ${timeoutMs} ms (received: ${received.map((each) => each.to).join(', ') || 'none'})`);
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The first link in a mail's text that starts with `prefix`. */
export function linkIn(mail: CaughtMail, prefix: string): string {
  const link = mail.text.split(/\s+/).find((word) => word.startsWith(prefix));
  if (!link) throw new Error(`no ${prefix} link in the mail "${mail.subject}": ${mail.text}`);
  return link;
}
