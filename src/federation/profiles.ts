/**
 * Who signed in at another identity provider, read from what it says: an OpenID Connect provider's ID token claims
 * (with userinfo), or a plain OAuth 2.0 provider's profile, whose fields its entry names (GitHub's are known).
 * Whatever the provider, the address is lower-cased and trimmed, and it counts as confirmed only where the provider
 * says so.
 */
import type { IdentityProvider } from './identity-providers.js';

/** Who the provider says signed in: its subject, and the address if it gave one. */
export interface UpstreamIdentity {
  subject: string;
  email?: string;
  /** The provider says it confirmed the address (`email_verified`, or GitHub's list of addresses). */
  emailVerified: boolean;
  name?: string;
  /** Everything the provider said: the ID token's claims (with userinfo's), or the profile; read by ./mappers.ts. */
  claims: Record<string, unknown>;
  /** The ID token itself (OpenID Connect), the hint a sign-out at the provider sends back (./logout.ts). */
  idToken?: string;
}

/** A GET of the provider's API with the person's access token: the JSON, or undefined where it answered 404. */
export type ReadApi = (url: string, accept: string) => Promise<unknown>;

/** The longest subject kept: providers' ids are far shorter, and one longer is not an id. */
const MAX_SUBJECT = 255;

export function identityFromClaims(subject: string, claims: Record<string, unknown>): UpstreamIdentity {
  return { ...identityOf(subject, claims.email, claims.email_verified, claims.name), claims };
}

/**
 * A plain OAuth 2.0 provider's person, from its profile endpoint; undefined when the profile names no one (no
 * subject where the entry says it is).
 */
export async function identityFromProfile(provider: IdentityProvider, read: ReadApi): Promise<UpstreamIdentity | undefined> {
  const { endpoints, profileFields: fields } = provider;
  if (!endpoints || !fields) throw new Error(`${provider.id} is an OpenID Connect provider: its ID token says who signed in`);
  const accept = provider.type === 'github' ? 'application/vnd.github+json' : 'application/json';
  const profile = await read(endpoints.profile, accept);
  if (!isRecord(profile)) return undefined;
  const subject = subjectOf(fieldOf(profile, fields.subject));
  if (!subject) return undefined;
  if (provider.type === 'github' && endpoints.emails) {
    const claims = endpoints.organizations && provider.scope.split(' ').includes('read:org') ? { ...profile, organizations: await gitHubOrganizations(endpoints.organizations, read) } : profile;
    return { ...gitHubIdentity(subject, profile, await read(endpoints.emails, accept)), claims };
  }
  return { ...identityOf(subject, fieldOf(profile, fields.email), fieldOf(profile, fields.emailVerified), fieldOf(profile, fields.name)), claims: profile };
}

/**
 * GitHub's profile carries only the public address, and does not say whether it is confirmed; most people keep
 * theirs private. The list of addresses (scope user:email) has them all, each with whether it is confirmed: the
 * primary one is the account's. Without that scope (a 404), the public address, unconfirmed.
 */
function gitHubIdentity(subject: string, profile: Record<string, unknown>, emails: unknown): Omit<UpstreamIdentity, 'claims'> {
  const name = typeof profile.name === 'string' && profile.name.trim() ? profile.name : profile.login;
  const primary = Array.isArray(emails) ? emails.find((entry) => isRecord(entry) && entry.primary === true) : undefined;
  if (isRecord(primary)) return identityOf(subject, primary.email, primary.verified, name);
  return identityOf(subject, profile.email, false, name);
}

/**
 * The logins of the person's GitHub organizations, lower-cased (GitHub's are case-insensitive): those whose
 * membership is public, and those that let this OAuth app see it (an organization may restrict OAuth apps).
 */
async function gitHubOrganizations(url: string, read: ReadApi): Promise<string[]> {
  const organizations = await read(`${url}?per_page=100`, 'application/vnd.github+json');
  if (!Array.isArray(organizations)) return [];
  return organizations.flatMap((organization) => (isRecord(organization) && typeof organization.login === 'string' ? [organization.login.toLowerCase()] : []));
}

function identityOf(subject: string, email: unknown, verified: unknown, name: unknown): Omit<UpstreamIdentity, 'claims'> {
  const address = typeof email === 'string' && email.includes('@') && email.length <= 254 ? email.trim().toLowerCase() : undefined;
  const shownName = typeof name === 'string' ? name.trim().slice(0, 200) : undefined;
  // Some providers (older Cognito) send the boolean as text: the same assertion.
  const confirmed = verified === true || verified === 'true';
  return { subject, email: address, emailVerified: address !== undefined && confirmed, name: shownName || undefined };
}

/** A subject as kept: a non-empty string, or a whole number as GitHub's and many APIs' ids are. */
function subjectOf(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_SUBJECT ? value : undefined;
}

/** `data.id`: a field, nested where the name is dotted. */
export function fieldOf(profile: Record<string, unknown>, name: string): unknown {
  let at: unknown = profile;
  for (const key of name.split('.')) at = isRecord(at) && Object.hasOwn(at, key) ? at[key] : undefined;
  return at;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
