/**
 * The resource-owner password grant (RFC 6749 §4.3), for legacy first-party apps only. RFC 9700 §2.4 says it
 * MUST NOT be used: it teaches users to type their password into apps, and it cannot do MFA or consent. It is
 * therefore off unless a first-party client is registered with it (`authz clients add … --allow-password-grant`),
 * discovery advertises it only while such a client exists, and it goes through the same brute-force limits and
 * audit as the login page.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { TwoFactor } from '../accounts/two-factor.js';
import type { UserRepository } from '../accounts/users.js';
import { passwordExpired } from '../accounts/password-expiry.js';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import { describeWait } from '../security/failure-limiter.js';
import type { SecurityLimits } from '../security/limits.js';
import { signInWithPassword } from '../security/password-sign-in.js';
import { type Membership, accountFinder } from './accounts.js';
import type { Catalog } from './catalog.js';
import { OIDC_SCOPES } from './scopes.js';

export const PASSWORD_GRANT = 'password';

export interface PasswordGrantDependencies {
  users: UserRepository;
  twoFactor: TwoFactor;
  catalog: Catalog;
  limits: SecurityLimits;
  audit: AuditSink;
  /** EMAIL_CONFIRMATION_REQUIRED: an unconfirmed account gets no tokens from this grant (it has no page to confirm on). */
  emailConfirmationRequired: boolean;
  /** USER_CLAIMS, for the ID token it issues. */
  userClaims: readonly string[];
  /** The roles the ID token names come with the user's groups'. */
  groups: Membership;
  /** TERMS_VERSION: an account that has not accepted it gets no tokens from this grant. */
  termsVersion?: string;
  /** PASSWORD_MAX_AGE: an expired password gets no tokens from this grant (it has no page to replace it on); 0: none expire. */
  passwordMaxAgeSeconds?: number;
}

class TooManyFailedSignIns extends errors.OIDCProviderError {
  constructor(lockedMs: number) {
    super(429, 'invalid_grant');
    Object.assign(this, { error_description: `too many failed sign-in attempts; retry in ${describeWait(lockedMs)}` });
  }
}

/** The description is sent (InvalidGrant's own stays generic), so the app can tell the person what to do. */
class SecondFactorRequired extends errors.InvalidGrant {
  constructor() {
    super();
    Object.assign(this, { error_description: 'this account uses two-step verification: sign in through the browser instead' });
  }
}

class EmailUnconfirmed extends errors.InvalidGrant {
  constructor() {
    super();
    Object.assign(this, { error_description: 'this account has not confirmed its email address: sign in through the browser to confirm it' });
  }
}

class PasswordChangeRequired extends errors.InvalidGrant {
  constructor(description = 'this account must choose a new password: sign in through the browser to choose it') {
    super();
    Object.assign(this, { error_description: description });
  }
}

class TermsNotAccepted extends errors.InvalidGrant {
  constructor() {
    super();
    Object.assign(this, { error_description: 'this account has not accepted the terms of service: sign in through the browser to accept them' });
  }
}

const epochNow = () => Math.floor(Date.now() / 1000);

/** The OpenID scopes asked for that the client may have (API scopes are not issued by this grant). */
function grantedScopes(requested: unknown, clientScope: string | undefined): string[] {
  const allowed = new Set((clientScope ?? OIDC_SCOPES.join(' ')).split(' '));
  const asked = typeof requested === 'string' && requested ? requested.split(' ') : ['openid'];
  return [...new Set(asked)].filter((scope) => OIDC_SCOPES.includes(scope) && allowed.has(scope));
}

export function registerPasswordGrant(provider: Provider, deps: PasswordGrantDependencies): void {
  const handler = async (ctx: KoaContextWithOIDC) => {
    const { client, params } = ctx.oidc;
    if (!client || !params) throw new errors.InvalidRequest('no client');
    const { username, password } = params as { username?: unknown; password?: unknown };
    if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) {
      throw new errors.InvalidRequest('username and password are required');
    }
    if (!(await deps.catalog.client(client.clientId))?.firstParty) {
      throw new errors.UnauthorizedClient('the password grant is only for first-party clients');
    }
    const outcome = await signInWithPassword(deps, {
      email: username,
      password,
      ip: ctx.ip,
      clientId: client.clientId,
      facts: requestFacts(ctx),
      via: 'password_grant',
      refuseUnconfirmedEmail: deps.emailConfirmationRequired,
    });
    if ('lockedMs' in outcome) {
      ctx.set('Retry-After', String(Math.ceil(outcome.lockedMs / 1000)));
      throw new TooManyFailedSignIns(outcome.lockedMs);
    }
    if ('rejected' in outcome) throw new errors.InvalidGrant('invalid username or password');
    if (outcome.emailUnconfirmed) throw new EmailUnconfirmed();
    const { user } = outcome;
    /** A right password this grant still cannot sign in with: audited with the reason, answered with `error`. */
    const refuse = (reason: string, error: Error) => {
      deps.audit.record({
        type: 'sign_in',
        outcome: 'failure',
        accountId: user.id,
        clientId: client.clientId,
        ...requestFacts(ctx),
        detail: { email: user.email, via: 'password_grant', reason },
      });
      return error;
    };
    // This grant has no page to ask for a code on: the user signs in through the browser (authorization code).
    if (outcome.secondFactor) throw refuse('second_factor_required', new SecondFactorRequired());
    // A temporary password gets no tokens: it would go on working in the app for as long as its refresh token.
    if (user.passwordChangeRequired) throw refuse('password_change_required', new PasswordChangeRequired());
    if (passwordExpired(user, deps.passwordMaxAgeSeconds ?? 0)) throw refuse('password_expired', new PasswordChangeRequired('this account’s password has expired: sign in through the browser to choose a new one'));
    // Nor do terms not yet accepted: this grant has no page to show them on.
    if (deps.termsVersion && user.termsAccepted?.version !== deps.termsVersion) throw refuse('terms_not_accepted', new TermsNotAccepted());

    const scopes = grantedScopes(params.scope, client.scope);
    const scope = scopes.join(' ');
    const grant = new provider.Grant({ accountId: user.id, clientId: client.clientId });
    if (scope) grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const authTime = epochNow();

    const accessToken = new provider.AccessToken({ accountId: user.id, client, grantId, scope, gty: PASSWORD_GRANT });
    ctx.oidc.entity('AccessToken', accessToken);
    const body: Record<string, unknown> = {
      access_token: await accessToken.save(),
      token_type: 'Bearer',
      expires_in: accessToken.expiration,
      scope: scope || undefined,
    };
    if (scopes.includes('offline_access') && client.grantTypeAllowed('refresh_token')) {
      const refreshToken = new provider.RefreshToken({ accountId: user.id, client, grantId, scope, gty: PASSWORD_GRANT, authTime, amr: ['pwd'] });
      body.refresh_token = await refreshToken.save();
    }
    if (scopes.includes('openid')) {
      const account = await accountFinder(deps.users, { userClaims: deps.userClaims, membership: deps.groups })(ctx, user.id);
      if (!account) throw new errors.InvalidGrant('the account is not available');
      const idToken = new provider.IdToken(await account.claims('id_token', scope, {}, []), { ctx });
      (idToken as unknown as { scope: string }).scope = scope; // which claims the scopes release
      idToken.set('auth_time', authTime);
      idToken.set('amr', ['pwd']);
      body.id_token = await idToken.issue({ use: 'idtoken' });
    }
    ctx.body = body;
  };
  provider.registerGrantType(PASSWORD_GRANT, handler, ['username', 'password', 'scope']);
}
