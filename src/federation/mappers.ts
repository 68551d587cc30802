/**
 * What a provider's sign-in says about the account beyond who it is (Keycloak's identity provider mappers): roles
 * it grants by a claim's value ("Claim to Role"), or to everyone signing in that way ("Hardcoded Role"), and
 * attributes it sets from claims ("Attribute Importer"), which USER_CLAIMS may then release to apps.
 *
 *   "roles": [{ "role": "staff" }, { "role": "admin", "claim": "groups", "value": "idp-admins" }],
 *   "attributes": { "tenant_id": "tid", "department": "org.department" }
 *
 * The roles an entry names are the provider's to decide: at each sign-in with it (`syncMode` force, the default)
 * a role is granted when one of its mappers matches and taken away when none does, whoever granted it; roles the
 * entry does not name are never touched. A mapped attribute the provider no longer sends is removed. With
 * `syncMode` import the mapping is applied once, to the account the provider's first sign-in makes, and
 * administrators keep the account from then on.
 */
import { z } from 'zod';
import { type AttributeValue, type Attributes, attributeValue } from '../accounts/attributes.js';
import { fieldOf } from './profiles.js';

export interface RoleMapper {
  role: string;
  /** The claim read (dotted for a nested one), and the value that grants the role; neither: always granted. */
  claim?: string;
  value?: string | number | boolean;
}

/** Who may sign in through a provider: the claim must have one of the values (or, a list, hold one). */
export interface ClaimRequirement {
  claim: string;
  values: (string | number | boolean)[];
}

/** The first requirement `claims` do not meet, or undefined when they meet them all. */
export function unmetRequirement(requirements: readonly ClaimRequirement[], claims: Record<string, unknown>): ClaimRequirement | undefined {
  return requirements.find((requirement) => !requirement.values.some((value) => claimHas(claims, requirement.claim, value)));
}

export interface ProviderMappers {
  roles: RoleMapper[];
  /** Attribute name → the claim it is copied from. */
  attributes: Record<string, string>;
  syncMode: 'force' | 'import';
}

/** The account as the provider's word would have it: roles to grant and take away, attributes to set or remove. */
export const mappedAccount = z.object({
  grant: z.array(z.string()),
  revoke: z.array(z.string()),
  attributes: z.record(z.string(), attributeValue.nullable()),
});
export type MappedAccount = z.infer<typeof mappedAccount>;

/** The top-level claims the mapping and requirements read: an ID token without one is completed from userinfo. */
export function claimsRead(mappers: ProviderMappers, requirements: readonly ClaimRequirement[] = []): string[] {
  const paths = [
    ...mappers.roles.flatMap((mapper) => (mapper.claim ? [mapper.claim] : [])),
    ...Object.values(mappers.attributes),
    ...requirements.map((requirement) => requirement.claim),
  ];
  return [...new Set(paths.map((path) => path.split('.')[0] as string))];
}

/** What `claims` map to, or undefined when the entry maps nothing. */
export function mapClaims(mappers: ProviderMappers, claims: Record<string, unknown>): MappedAccount | undefined {
  const attributeNames = Object.keys(mappers.attributes);
  if (mappers.roles.length === 0 && attributeNames.length === 0) return undefined;
  const granted = new Set(mappers.roles.filter((mapper) => matches(mapper, claims)).map((mapper) => mapper.role));
  const named = new Set(mappers.roles.map((mapper) => mapper.role));
  const attributes: Record<string, AttributeValue | null> = {};
  for (const [name, claim] of Object.entries(mappers.attributes)) {
    const value = fieldOf(claims, claim);
    const usable = attributeValue.safeParse(value);
    // A value no attribute can hold (an object, a list of numbers, a text too long) is left alone, not guessed at.
    if (usable.success) attributes[name] = usable.data;
    else if (value === undefined || value === null) attributes[name] = null;
  }
  return { grant: [...granted], revoke: [...named].filter((role) => !granted.has(role)), attributes };
}

/** The changes that bring `account` where the mapping says, or undefined when it is there already. */
export function changesFor(account: { roles: string[]; attributes: Attributes }, mapped: MappedAccount): { roles?: string[]; attributes?: Record<string, AttributeValue | null> } | undefined {
  const roles = [...account.roles.filter((role) => !mapped.revoke.includes(role)), ...mapped.grant.filter((role) => !account.roles.includes(role))];
  const rolesChanged = roles.length !== account.roles.length || roles.some((role, index) => role !== account.roles[index]);
  const attributes = Object.fromEntries(
    Object.entries(mapped.attributes).filter(([name, value]) => (value === null ? name in account.attributes : JSON.stringify(account.attributes[name]) !== JSON.stringify(value))),
  );
  const attributesChanged = Object.keys(attributes).length > 0;
  if (!rolesChanged && !attributesChanged) return undefined;
  return { ...(rolesChanged ? { roles } : {}), ...(attributesChanged ? { attributes } : {}) };
}

function matches(mapper: RoleMapper, claims: Record<string, unknown>): boolean {
  return mapper.claim === undefined || (mapper.value !== undefined && claimHas(claims, mapper.claim, mapper.value));
}

/** A claim has a value when it is that value, or a list holding it (`groups`, `roles`, Entra ID's `wids`). */
function claimHas(claims: Record<string, unknown>, name: string, wanted: string | number | boolean): boolean {
  const claim = fieldOf(claims, name);
  const values = Array.isArray(claim) ? claim : [claim];
  return values.some((value) => value === wanted || (typeof value !== 'object' && value !== undefined && String(value) === String(wanted)));
}
