/**
 * Passwords that expire (PASSWORD_MAX_AGE, Keycloak's "Expire Password" policy): a password older than the
 * setting must be replaced at the next sign-in made with it, at "Choose a new password" (the `update_password`
 * prompt, src/oidc/password-change-prompt.ts). Age counts from `password_changed_at`, which every change sets.
 * An account without a password has nothing to expire, and one that signs in with a passkey or another identity
 * provider is not stopped for a password it did not use. NIST SP 800-63B §3.1.1.2 advises against periodic
 * changes; this is for the policies (PCI DSS) that still ask for them, and is off unless set.
 */
import type { User } from './users.js';

/** When the user's password expires under `maxAgeSeconds` (0: never); undefined when it never does. */
export function passwordExpiresAt(user: Pick<User, 'passwordChangedAt'>, maxAgeSeconds: number): Date | undefined {
  // No password_changed_at: no password of its own (./users.ts hasOwnPassword).
  if (maxAgeSeconds <= 0 || !user.passwordChangedAt) return undefined;
  return new Date(user.passwordChangedAt.getTime() + maxAgeSeconds * 1000);
}

/** Whether the user's password is past `maxAgeSeconds` at `now`. */
export function passwordExpired(user: Pick<User, 'passwordChangedAt'>, maxAgeSeconds: number, now = new Date()): boolean {
  const expiresAt = passwordExpiresAt(user, maxAgeSeconds);
  return expiresAt !== undefined && expiresAt <= now;
}
