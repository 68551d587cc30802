/**
 * How long a login session lasts. Two clocks, as Keycloak's "SSO Session Idle" and "SSO Session Max":
 * - SESSION_TTL, sliding: oidc-provider saves the session again at each use with this lifetime;
 * - SESSION_MAX_TTL, from the sign-in: however often it is used, the session ends this long after the user
 *   entered a password. Each save is given at most the time left, so the stores drop it on time, and the login
 *   prompt asks again for a session that reached it (the check below), even if a store has not dropped it yet.
 *
 * Tokens issued without `offline_access` (opaque access tokens for userinfo) end with their session
 * (oidc-provider's default `expiresWithSession`), so the maximum ends them too. Refresh tokens are issued only
 * with `offline_access` and keep their own lifetime, as Keycloak's offline tokens outlive SSO sessions.
 *
 * A session found past its maximum is saved for one second more: a sign-in started from it then finds its session
 * gone and the user is asked to start again, as when any session expires during a sign-in. Only a request that
 * arrives within the stores' clock tolerance (15 s) after the maximum can meet that.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.js';

type SessionLike = { loginTs?: number };

const epochSeconds = () => Math.floor(Date.now() / 1000);

/** Seconds the session may still last from now: the sliding lifetime, capped by what is left of the maximum. */
export function sessionTtl(ttl: Config['ttl']) {
  return (_ctx: KoaContextWithOIDC, session: SessionLike): number => {
    const left = secondsLeft(ttl.sessionMax, session);
    // oidc-provider wants a positive lifetime; a session past its maximum is saved for a second and refused (below).
    return left === undefined ? ttl.session : Math.max(1, Math.min(ttl.session, left));
  };
}

/** Whether a signed-in session has reached SESSION_MAX_TTL (the login prompt's check). */
export function pastMaximum(maxSeconds: number, session: SessionLike | undefined): boolean {
  const left = session ? secondsLeft(maxSeconds, session) : undefined;
  return left !== undefined && left <= 0;
}

/** Seconds left of the maximum; undefined when there is none, or no sign-in to count from. */
function secondsLeft(maxSeconds: number, session: SessionLike): number | undefined {
  if (maxSeconds <= 0 || typeof session.loginTs !== 'number') return undefined;
  return session.loginTs + maxSeconds - epochSeconds();
}
