/**
 * A user's own attributes, as Keycloak's: `{ "tenant_id": "acme", "departments": ["sales", "support"] }`, set by
 * administrators (admin API, CLI) or brought by an import. Those USER_CLAIMS names are released as claims of the
 * same name (src/oidc/accounts.ts): in ID tokens and at userinfo with the `profile` scope, and in the user's
 * access tokens, as `roles` are, so that an API can authorise on them offline.
 *
 * A claim a token already has a meaning for (`sub`, `email`, `roles`, …) cannot be released this way: an attribute
 * must not be able to stand in for the server's own word.
 */
import { z } from 'zod';

/** A name as JSON and JWT libraries take it without quoting: a letter, then letters, digits, `_`, `.` or `-`. */
export const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_ATTRIBUTES = 50;
const MAX_VALUE_LENGTH = 1024;

export type AttributeValue = string | number | boolean | string[];
export type Attributes = Record<string, AttributeValue>;

/**
 * Claims with a meaning of their own: JWT's registered claims (RFC 7519), OpenID Connect's (Core §2, §5.1), those
 * of JWT access tokens and introspection (RFC 9068, RFC 7662), logout tokens, DPoP, and ours (`roles`).
 */
export const RESERVED_CLAIMS = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'sid', 'at_hash', 'c_hash', 's_hash',
  'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website',
  'email', 'email_verified', 'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number', 'phone_number_verified', 'address', 'updated_at',
  'scope', 'client_id', 'cnf', 'act', 'may_act', 'active', 'token_type', 'username', 'events', 'typ', 'roles', 'groups',
]);

export const attributeValue = z.union([
  z.string().max(MAX_VALUE_LENGTH, `an attribute's text is ${MAX_VALUE_LENGTH} characters at most`),
  z.number().finite(),
  z.boolean(),
  z.array(z.string().max(MAX_VALUE_LENGTH)).max(MAX_ATTRIBUTES, `an attribute holds ${MAX_ATTRIBUTES} values at most`),
]);

const NAME_RULE = 'an attribute name is a letter, then up to 63 letters, digits, "_", "." or "-"';

/** Names checked here rather than by the record's key schema, whose refusal would not say what a name must be. */
function checkNames(value: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const name of Object.keys(value)) {
    if (!ATTRIBUTE_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: NAME_RULE });
  }
  if (Object.keys(value).length > MAX_ATTRIBUTES) ctx.addIssue({ code: 'custom', message: `a user has ${MAX_ATTRIBUTES} attributes at most` });
}

/** A whole set, as a new or imported user has it. */
export const attributesSchema = z.record(z.string(), attributeValue).superRefine(checkNames).meta({
  description: 'The user’s own attributes: text, a number, true/false or a list of texts each; those USER_CLAIMS names become token claims',
});

/** Changes to a set: each name given is set, or removed when null; the rest stay. */
export const attributeChangesSchema = z.record(z.string(), attributeValue.nullable()).superRefine(checkNames).meta({
  description: 'Attributes to set, or to remove (null); those not named stay as they are',
});

/** `attributes` with `changes` applied, or why the result is not allowed. */
export function changedAttributes(attributes: Attributes, changes: Record<string, AttributeValue | null>): Attributes {
  const result: Attributes = { ...attributes };
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) delete result[name];
    else result[name] = value;
  }
  return result;
}

export const tooManyAttributes = (attributes: Attributes) => Object.keys(attributes).length > MAX_ATTRIBUTES;

/** A scope of our own that releases attributes (`hr` in `hr:employee_id`): lower-case, as scopes are written. */
const CLAIM_SCOPE = /^[a-z][a-z0-9_.-]{0,63}$/;

/**
 * Scopes with a meaning of their own, which an attribute's scope cannot be (`profile` is the default one); and the
 * names oidc-provider's claims map keeps for claims of no scope (src/oidc/accounts.ts claimsByScope).
 */
const RESERVED_SCOPES = new Set(['openid', 'offline_access', 'email', 'roles', 'groups', 'acr', 'iss', 'sid']);

/**
 * USER_CLAIMS read: `tenant_id` is released with `profile` (and in every access token), `hr:employee_id` only to
 * an app granted the scope `hr` (Keycloak's client scopes: the app must be registered with that scope, and the
 * person consents to it). `claims`: every released name; `scopes`: each scope of our own with its claims.
 */
export function parseUserClaims(entries: readonly string[]): { claims: string[]; scopes: Record<string, string[]>; problems: string[] } {
  const claims: string[] = [];
  const scopes: Record<string, string[]> = {};
  const problems: string[] = [];
  for (const entry of entries) {
    const [scope, name] = entry.includes(':') ? (entry.split(':', 2) as [string, string]) : ['profile', entry];
    const problem = userClaimProblem(name) ?? scopeProblem(scope);
    if (problem) problems.push(problem);
    else if (claims.includes(name)) problems.push(`USER_CLAIMS: "${name}" is listed twice`);
    else {
      claims.push(name);
      if (scope !== 'profile') scopes[scope] = [...(scopes[scope] ?? []), name];
    }
  }
  return { claims, scopes, problems };
}

function scopeProblem(scope: string): string | undefined {
  if (!CLAIM_SCOPE.test(scope)) return `USER_CLAIMS: "${scope}" is not a scope name (a lower-case letter, then letters, digits, "_", "." or "-")`;
  if (RESERVED_SCOPES.has(scope)) return `USER_CLAIMS: the scope "${scope}" has a meaning of its own: give the attribute a scope of its own, or none (profile)`;
  return undefined;
}

/** Why USER_CLAIMS cannot name `name`, or undefined when it can. */
export function userClaimProblem(name: string): string | undefined {
  if (!ATTRIBUTE_NAME.test(name)) return `USER_CLAIMS: "${name}" is not an attribute name (a letter, then letters, digits, "_", "." or "-")`;
  if (RESERVED_CLAIMS.has(name)) return `USER_CLAIMS: "${name}" is a claim with a meaning of its own, which an attribute cannot stand in for`;
  return undefined;
}

/** The attributes of `attributes` that `released` names, as claims. */
export function releasedClaims(attributes: Attributes, released: readonly string[]): Record<string, AttributeValue> {
  const claims: Record<string, AttributeValue> = {};
  for (const name of released) {
    if (Object.hasOwn(attributes, name)) claims[name] = attributes[name] as AttributeValue;
  }
  return claims;
}
