/**
 * How the provider sees our users: `findAccount` (called at login, token, refresh and userinfo time, so a
 * disabled or deleted user stops working everywhere), the claims each scope releases, and the claims added to
 * access tokens.
 */
import type { Account, ClaimsParameterMember, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import { releasedClaims } from '../accounts/attributes.js';
import { passwordExpired } from '../accounts/password-expiry.js';
import type { User, UserRepository } from '../accounts/users.js';
import type { Catalog } from './catalog.js';
import type { Actor } from './token-exchange.js';

/**
 * What each scope releases. `userClaims` (USER_CLAIMS, src/accounts/attributes.ts) come with `profile`, but those
 * of a scope of their own (`claimScopes`, `hr:employee_id`), which come with that scope.
 */
export const claimsByScope = (userClaims: readonly string[] = [], claimScopes: Readonly<Record<string, string[]>> = {}) => ({
  acr: null,
  iss: null,
  sid: null,
  // auth_time with `sub`: in every ID token, as relying parties checking max_age or session age expect, without
  // the client flag `require_auth_time`, which would make oidc-provider refuse every request without `openid`.
  // amr too (RFC 8176 values: pwd; otp and mfa after two-step verification), and acr when the sign-in had both
  // steps (../accounts/two-factor.ts MFA_ACR), whether or not the request asked for it: apps that need a second
  // factor check them.
  openid: ['sub', 'auth_time', 'amr', 'acr'],
  profile: ['name', 'preferred_username', 'updated_at', ...userClaims.filter((claim) => !Object.values(claimScopes).some((claims) => claims.includes(claim)))],
  email: ['email', 'email_verified'],
  roles: ['roles'],
  // Keycloak's "group membership" mapper: the names of the groups the user belongs to.
  groups: ['groups'],
  ...claimScopes,
});

/** A user's roles with their groups' (src/accounts/groups.ts), and the groups that exist, as tokens carry them. */
export interface Membership {
  effectiveRoles(user: User): string[];
  existingGroups(user: User): string[];
}

/** Without groups (tools that read users alone): a user's own roles, no groups. */
const OWN_ROLES_ONLY: Membership = { effectiveRoles: (user) => user.roles, existingGroups: () => [] };

function userClaims(user: User, released: readonly string[], roles: string[], groups: string[]): Record<string, unknown> {
  return {
    // First, so that none of the server's own claims can be overwritten (USER_CLAIMS refuses their names anyway).
    ...releasedClaims(user.attributes, released),
    sub: user.id,
    name: user.name ?? undefined,
    preferred_username: user.email,
    updated_at: Math.floor(user.updatedAt.getTime() / 1000),
    email: user.email,
    email_verified: user.emailVerified,
    roles,
    groups,
  };
}

/** Seconds since the epoch at which the session or token in hand was issued, when known. */
function issuedAt(ctx: KoaContextWithOIDC, token: { iat?: number } | undefined): number | undefined {
  if (token?.iat) return token.iat;
  return ctx?.oidc?.session?.loginTs;
}

/**
 * A user "logged out everywhere" (src/accounts/users.ts revokeSessions, a password change, disable) has no
 * account for sessions and tokens issued before that moment: the provider then asks for a new login, refuses the
 * refresh, or answers invalid_token.
 */
export function revokedFor(user: User, issued: number | undefined): boolean {
  if (!user.sessionsRevokedAt || issued === undefined) return false;
  return issued < Math.floor(user.sessionsRevokedAt.getTime() / 1000);
}

/** Whether a session or token issued at `issued` (epoch seconds) still stands for `user`: enabled, and not revoked since. */
export function activeSince(user: User | undefined, issued: number | undefined): user is User {
  return user !== undefined && !user.disabledAt && !revokedFor(user, issued);
}

/**
 * One user lookup per request: the provider asks for the account and then for the token's extra claims, often
 * for the same user within one request (code exchange, refresh). Remembered per request only, so a change to the
 * user is seen by the next request.
 */
const usersByRequest = new WeakMap<object, Map<string, Promise<User | undefined>>>();

function findUser(users: UserRepository, ctx: KoaContextWithOIDC | undefined, id: string): Promise<User | undefined> {
  if (!ctx) return users.findById(id);
  let cache = usersByRequest.get(ctx);
  if (!cache) {
    cache = new Map();
    usersByRequest.set(ctx, cache);
  }
  let user = cache.get(id);
  if (!user) {
    user = users.findById(id);
    cache.set(id, user);
  }
  return user;
}

/** Reads a token's grant together with its user, for the lookups that follow (src/store/grant-read-ahead.ts). */
export type GrantReadAhead = (grantId: string, userId: string) => Promise<void>;

/** At userinfo the provider looks up the access token's account and then its grant: both are read at once. */
function readsGrantNext(token: unknown): token is { kind: 'AccessToken'; grantId: string } {
  const { kind, grantId } = (token ?? {}) as { kind?: unknown; grantId?: unknown };
  return kind === 'AccessToken' && typeof grantId === 'string';
}

export function accountFinder(
  users: UserRepository,
  options: { readGrantWithUser?: GrantReadAhead; userClaims?: readonly string[]; passwordMaxAgeSeconds?: number; membership?: Membership } = {},
): FindAccount {
  const { readGrantWithUser, userClaims: released = [], passwordMaxAgeSeconds = 0, membership = OWN_ROLES_ONLY } = options;
  return async (ctx, sub, token): Promise<Account | undefined> => {
    if (readGrantWithUser && readsGrantNext(token)) await readGrantWithUser(token.grantId, sub);
    const user = await findUser(users, ctx, sub);
    if (!activeSince(user, issuedAt(ctx, token as { iat?: number } | undefined))) return undefined;
    return {
      accountId: user.id,
      // Read by the `update_password` prompt (./password-change-prompt.ts) and the `accept_terms` one (./terms-prompt.ts).
      passwordChangeRequired: user.passwordChangeRequired,
      passwordExpired: passwordExpired(user, passwordMaxAgeSeconds),
      termsAcceptedVersion: user.termsAccepted?.version ?? null,
      // oidc-provider filters these down to what the granted scopes and claims allow.
      claims: async (_use: string, _scope: string, _claims: { [key: string]: null | ClaimsParameterMember }) =>
        userClaims(user, released, membership.effectiveRoles(user), membership.existingGroups(user)) as { sub: string },
    };
  };
}

type TokenLike = { accountId?: string; clientId?: string; kind?: string };

/**
 * The sign-in behind a user's token, from the code, refresh token or device code it is issued for, or the access
 * token it is exchanged for (./token-exchange.ts), which also names who acts for the user (`act`).
 */
function signInOf(ctx: KoaContextWithOIDC | undefined): { auth_time?: number; acr?: string; amr?: string[]; act?: Actor } {
  const entities = ctx?.oidc?.entities as { [name: string]: { authTime?: number; acr?: string; amr?: string[]; act?: Actor } | undefined } | undefined;
  const source = entities?.AuthorizationCode ?? entities?.RefreshToken ?? entities?.DeviceCode ?? entities?.ExchangedSignIn;
  if (!source) return {};
  const { authTime, acr, amr, act } = source;
  return { ...(authTime ? { auth_time: authTime } : {}), ...(acr ? { acr } : {}), ...(amr?.length ? { amr } : {}), ...(act ? { act } : {}) };
}

/**
 * The attributes a user's access token carries: those of `profile` always, as `roles` are, and those of a scope of
 * their own (`hr:employee_id`) when the app was granted that scope.
 */
function releasedToToken(ctx: KoaContextWithOIDC | undefined, released: readonly string[], claimScopes: Readonly<Record<string, string[]>>): string[] {
  const scoped = Object.entries(claimScopes);
  if (scoped.length === 0) return [...released];
  const grant = ctx?.oidc?.entities?.Grant as { getOIDCScope?: () => string } | undefined;
  const granted = new Set((grant?.getOIDCScope?.() ?? '').split(' '));
  const withheld = new Set(scoped.flatMap(([scope, claims]) => (granted.has(scope) ? [] : claims)));
  return released.filter((claim) => !withheld.has(claim));
}

/** Whether the app was granted the `groups` scope: only then do its users' access tokens name their groups. */
function groupsGranted(ctx: KoaContextWithOIDC | undefined): boolean {
  const grant = ctx?.oidc?.entities?.Grant as { getOIDCScope?: () => string } | undefined;
  return (grant?.getOIDCScope?.() ?? '').split(' ').includes('groups');
}

/**
 * Roles travel in access tokens so that APIs can authorise offline: the user's roles (with their groups') for
 * tokens issued to a user, the client's own roles for client-credentials tokens; the user's groups too when the
 * app was granted the `groups` scope. A user's tokens also say how the user signed in (RFC 9068 §2.2.1:
 * auth_time, acr, amr), so that an API can demand two steps for what it guards.
 */
export function tokenClaims(
  users: UserRepository,
  catalog: Catalog,
  released: readonly string[] = [],
  claimScopes: Readonly<Record<string, string[]>> = {},
  membership: Membership = OWN_ROLES_ONLY,
) {
  return async (ctx: KoaContextWithOIDC, token: TokenLike): Promise<Record<string, unknown> | undefined> => {
    if (token.accountId) {
      const user = await findUser(users, ctx, token.accountId);
      if (!user) return undefined;
      const groups = groupsGranted(ctx) ? membership.existingGroups(user) : undefined;
      return {
        ...releasedClaims(user.attributes, releasedToToken(ctx, released, claimScopes)),
        roles: membership.effectiveRoles(user),
        ...(groups ? { groups } : {}),
        ...signInOf(ctx),
      };
    }
    if (token.kind === 'ClientCredentials' && token.clientId) {
      const client = await catalog.client(token.clientId);
      return client ? { roles: client.roles } : undefined;
    }
    return undefined;
  };
}
