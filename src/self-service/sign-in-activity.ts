/**
 * "Recent sign-ins" on the account page: the account's latest sign-in attempts from the audit log, successful or
 * not, each with when, how, to which app, and from where (the address and the browser the user agent names), so
 * that a person notices a sign-in that was not theirs, or someone guessing at their password, as Google's
 * "Recent security activity" lets them. A refused password names the account since it is recorded so
 * (src/security/password-sign-in.ts).
 */
import Bowser from 'bowser';
import type { StoredAuditEvent } from '../audit/audit-log.js';
import { ACCOUNT_CONSOLE_CLIENT_ID } from '../clients/account-console.js';

/** How many are shown. */
export const RECENT_SIGN_INS = 10;

/** Why a sign-in was refused, as its owner reads it (the audit log's `reason`). */
const REFUSALS: Record<string, string> = {
  bad_credentials: 'Refused: wrong password',
  bad_second_factor: 'Refused: wrong code',
  locked: 'Refused: too many wrong attempts, locked for a while',
  email_unconfirmed: 'Stopped: the email address was not confirmed yet',
  disabled: 'Refused: the account was disabled',
  second_factor_required: 'Refused: two-step verification is needed, which that app cannot ask for',
  password_change_required: 'Refused: a new password had to be chosen first',
  password_expired: 'Refused: the password had expired',
  terms_not_accepted: 'Refused: the terms of service were not accepted',
};

export interface SignInShown {
  outcome: string;
  failed: boolean;
  how: string | undefined;
  app: string;
  from: string;
}

/** How the page names apps and identity providers by their ids, and writes a date. */
export interface Namers {
  client(clientId: string): Promise<string>;
  provider(providerId: string): string;
  when(date: Date): string;
}

/** The audit event as the page lists it. */
export async function signInShown(event: StoredAuditEvent, names: Namers): Promise<SignInShown & { at: string }> {
  const failed = event.outcome === 'failure';
  const detail = event.detail ?? {};
  const reason = typeof detail.reason === 'string' ? detail.reason : '';
  return {
    at: names.when(event.at),
    failed,
    outcome: failed ? (REFUSALS[reason] ?? 'Refused') : 'Signed in',
    how: howOf(detail, names),
    app: !event.clientId ? 'an app' : event.clientId === ACCOUNT_CONSOLE_CLIENT_ID ? 'this account page' : await names.client(event.clientId),
    from: [event.ip, deviceOf(event.userAgent ?? null)].filter(Boolean).join(', ') || 'an unknown place',
  };
}

/** How the sign-in went, from its `amr` (or the step it failed at). */
function howOf(detail: Record<string, unknown>, names: Pick<Namers, 'provider'>): string | undefined {
  const amr = Array.isArray(detail.amr) ? (detail.amr as string[]) : [];
  if (amr.includes('hwk') || amr.includes('swk')) return 'with a passkey';
  if (amr.includes('fed')) return typeof detail.via === 'string' ? `with ${names.provider(detail.via)}` : 'with another identity provider';
  if (amr.includes('otp')) return 'with password and code';
  if (amr.includes('pwd')) return 'with password';
  return undefined;
}

/** "Firefox on Linux": the browser and system a user agent names, or undefined when it names none. */
export function deviceOf(userAgent: string | null): string | undefined {
  if (!userAgent) return undefined;
  const { browser, os } = Bowser.parse(userAgent);
  if (!browser.name) return undefined;
  return os.name ? `${browser.name} on ${os.name}` : browser.name;
}
