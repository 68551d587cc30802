/**
 * Two-step verification at sign-in: after the password, a code from the user's authenticator app (TOTP), or one of
 * their single-use recovery codes. Who must use it: everyone who set it up, and those an administrator asked to
 * (`totp_required`, or one of TOTP_REQUIRED_ROLES) or whose client requires it or asks for it (`requireMfa`,
 * `acr_values`), who set it up at their next sign-in. The login page's routes (src/interaction/second-factor.ts)
 * call this; administrators reset it through UserRepository.resetTwoFactor.
 */
import type { Pepper } from '../clients/secrets.js';
import type { Database } from '../store/database.js';
import {
  decryptTotpSecret,
  encryptTotpSecret,
  hashRecoveryCode,
  looksLikeRecoveryCode,
  newRecoveryCodes,
  sealingPepperOf,
  stepOfCode,
} from './totp.js';
import type { User } from './users.js';
import { acrValuesClaimed } from '../oidc/claims-parameter.js';

/** What a user must do after their password: nothing more, type a code, or set up an authenticator app first. */
export type SecondFactorStep = 'none' | 'verify' | 'enroll';

/** How a code was accepted, as OpenID `amr` values (RFC 8176): `otp` for the app's code, `mfa` for both. */
export type SecondFactorMethod = 'otp' | 'recovery';

export const amrOf = (method: SecondFactorMethod | undefined): string[] =>
  method === undefined ? ['pwd'] : method === 'otp' ? ['pwd', 'otp', 'mfa'] : ['pwd', 'mfa'];

/**
 * The `acr` of a sign-in with both steps, and the value a client sends in `acr_values` to ask for one (step-up):
 * the OpenID PAPE "multi-factor" policy, the value Auth0 uses too. A sign-in with the password alone has no `acr`.
 */
export const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';

/** The name of the provider's login check (src/oidc/provider.ts) that asks a signed-in user for a second step. */
export const SECOND_FACTOR_REQUESTED = 'second_factor_requested';

/**
 * Whether an authorization request needs a sign-in with two steps: its client is registered to require them, or
 * its `acr_values` (or the `acr` of its `claims` parameter) asks for them. Required by the client, a request
 * cannot leave them out by what it sends.
 */
export const secondFactorWanted = (params: { acr_values?: unknown; claims?: unknown } | undefined, client: { requireMfa: boolean } | undefined): boolean =>
  client?.requireMfa === true ||
  (typeof params?.acr_values === 'string' && params.acr_values.split(' ').includes(MFA_ACR)) ||
  acrValuesClaimed(params?.claims).includes(MFA_ACR);

interface TotpRow {
  id: string;
  totp_secret: string | null;
  totp_recovery_codes: string[] | null;
}

export class TwoFactor {
  constructor(
    private readonly db: Database,
    private readonly options: {
      peppers: readonly Pepper[];
      requiredRoles: readonly string[];
      /** A user's roles with those of their groups (./groups.ts); unset: their own. */
      rolesOf?: (user: User) => readonly string[];
    },
  ) {}

  /** `asked`: the client requires or asked for two steps, so a user without an app sets one up now. */
  stepFor(user: User, asked = false): SecondFactorStep {
    if (user.totpEnrolledAt) return 'verify';
    return asked || this.isRequired(user) ? 'enroll' : 'none';
  }

  /** Whether the user must use it: asked one by one, or by a role of theirs. */
  isRequired(user: User): boolean {
    return user.totpRequired || this.requiringRoles(user).length > 0;
  }

  /** The user's roles (their groups' too) that are in TOTP_REQUIRED_ROLES, so that administrators can be told why it is required. */
  requiringRoles(user: User): string[] {
    const roles = this.options.rolesOf?.(user) ?? user.roles;
    return roles.filter((role) => this.options.requiredRoles.includes(role));
  }

  /** Seals a secret being set up, to keep with the sign-in until the first code confirms it. */
  seal(secret: string, userId: string): string {
    return encryptTotpSecret(secret, userId, this.#currentPepper());
  }

  unseal(sealed: string, userId: string): string | undefined {
    return decryptTotpSecret(sealed, userId, this.options.peppers);
  }

  /**
   * Keeps the secret once the user typed a code it makes, and returns the recovery codes to show them, once.
   * `replacing`: a new app in place of the one set up (after a recovery code: a lost phone); otherwise only a user
   * without one. `changed-meanwhile` when the user's state is no longer that (another sign-in set one up, or an
   * administrator reset it); nothing is written then.
   */
  async enroll(userId: string, secret: string, code: string, replacing = false): Promise<string[] | 'wrong-code' | 'changed-meanwhile'> {
    const step = stepOfCode(secret, code);
    if (step === undefined) return 'wrong-code';
    const pepper = this.#currentPepper();
    const recoveryCodes = newRecoveryCodes();
    const updated = await this.db('users')
      .where({ id: userId })
      .modify((query) => (replacing ? query.whereNotNull('totp_enrolled_at') : query.whereNull('totp_enrolled_at')))
      .whereNull('disabled_at')
      .update({
        totp_secret: encryptTotpSecret(secret, userId, pepper),
        totp_enrolled_at: new Date(),
        totp_last_step: step,
        totp_recovery_codes: recoveryCodes.map((recovery) => hashRecoveryCode(recovery, pepper)),
        updated_at: new Date(),
      });
    return updated === 1 ? recoveryCodes : 'changed-meanwhile';
  }

  /**
   * Accepts an authenticator code once (a code whose step is not after the last accepted one is refused, so a code
   * seen over a shoulder cannot be used again), or a recovery code once; both by a conditional update, so two
   * sign-ins racing with the same code cannot both pass.
   */
  async verify(userId: string, typed: string): Promise<SecondFactorMethod | undefined> {
    const row = await this.db<TotpRow>('users')
      .where({ id: userId })
      .whereNotNull('totp_enrolled_at')
      .whereNull('disabled_at')
      .first('id', 'totp_secret', 'totp_recovery_codes');
    if (!row?.totp_secret) return undefined;
    if (looksLikeRecoveryCode(typed)) return (await this.#useRecoveryCode(userId, typed, row)) ? 'recovery' : undefined;
    const secret = decryptTotpSecret(row.totp_secret, userId, this.options.peppers);
    const step = secret === undefined ? undefined : stepOfCode(secret, typed);
    if (step === undefined) return undefined;
    const used = await this.db('users')
      .where({ id: userId, totp_secret: row.totp_secret }) // not reset meanwhile
      .where((query) => query.whereNull('totp_last_step').orWhere('totp_last_step', '<', step))
      .update({ totp_last_step: step, ...this.#resealed(row.totp_secret, secret as string, userId) });
    return used === 1 ? 'otp' : undefined;
  }

  /**
   * A secret sealed under an older pepper is sealed again under the current one when it is used, so that once its
   * users have signed in, the old pepper can leave CLIENT_SECRET_PEPPERS without voiding their apps.
   */
  #resealed(sealed: string, secret: string, userId: string): { totp_secret?: string } {
    const current = this.#currentPepper();
    return sealingPepperOf(sealed) === current.kid ? {} : { totp_secret: encryptTotpSecret(secret, userId, current) };
  }

  /**
   * New recovery codes in place of the user's (the account page, after a code from their app): the old ones stop
   * working. Undefined when the user has no app set up (an administrator reset it meanwhile).
   */
  async replaceRecoveryCodes(userId: string): Promise<string[] | undefined> {
    const pepper = this.#currentPepper();
    const recoveryCodes = newRecoveryCodes();
    const updated = await this.db('users')
      .where({ id: userId })
      .whereNotNull('totp_enrolled_at')
      .whereNull('disabled_at')
      .update({ totp_recovery_codes: recoveryCodes.map((recovery) => hashRecoveryCode(recovery, pepper)), updated_at: new Date() });
    return updated === 1 ? recoveryCodes : undefined;
  }

  /** How many recovery codes the user has left. */
  async recoveryCodesLeft(userId: string): Promise<number> {
    const row = await this.db<TotpRow>('users').where({ id: userId }).first('totp_recovery_codes');
    return row?.totp_recovery_codes?.length ?? 0;
  }

  async #useRecoveryCode(userId: string, typed: string, row: TotpRow): Promise<boolean> {
    const stored = new Set(row.totp_recovery_codes ?? []);
    const hash = this.options.peppers
      .map((pepper) => hashRecoveryCode(typed, pepper))
      .find((candidate) => stored.has(candidate));
    if (!hash) return false;
    const used = await this.db('users')
      .where({ id: userId })
      .whereRaw('? = any(totp_recovery_codes)', [hash])
      .update({ totp_recovery_codes: this.db.raw('array_remove(totp_recovery_codes, ?)', [hash]) });
    return used === 1;
  }

  #currentPepper(): Pepper {
    const [pepper] = this.options.peppers;
    if (!pepper) throw new Error('no client-secret pepper is configured');
    return pepper;
  }
}
