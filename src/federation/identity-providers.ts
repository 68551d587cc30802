/**
 * The other identity providers people may sign in with (Keycloak's "Identity Providers", Logto's social
 * connectors), listed in a JSON file named by IDENTITY_PROVIDERS_FILE and read once, when the configuration is
 * loaded. Three kinds (`type`):
 * - `oidc` (the default): any OpenID Connect provider (Google, Microsoft Entra ID, GitLab, Okta, another Keycloak,
 *   another of us), found by discovery from its issuer;
 * - `github`: GitHub, or a GitHub Enterprise Server (`githubUrl`), which speak OAuth 2.0 without OpenID Connect;
 * - `oauth2`: any other plain OAuth 2.0 provider, its endpoints and the names of its profile's fields given.
 *
 *   [{ "id": "google", "name": "Google", "issuer": "https://accounts.google.com",
 *      "clientId": "…apps.googleusercontent.com", "clientSecretEnv": "GOOGLE_CLIENT_SECRET" },
 *    { "id": "github", "type": "github", "name": "GitHub", "clientId": "Ov23…", "clientSecretEnv": "GITHUB_SECRET" }]
 *
 * Each is registered there with the redirect URI `<ISSUER>/federation/<id>/callback`: one per provider, so that
 * an answer cannot be passed off as another provider's (the mix-up attack, RFC 9700 §4.4).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ATTRIBUTE_NAME } from '../accounts/attributes.js';
import { roleName } from '../accounts/roles.js';
import type { ClaimRequirement, ProviderMappers } from './mappers.js';

export type IdentityProviderType = 'oidc' | 'oauth2' | 'github';

/** Where a plain OAuth 2.0 provider (`oauth2`, `github`) is asked, since no discovery says so. */
export interface OAuthEndpoints {
  authorization: string;
  token: string;
  /** The signed-in person's profile, read with the access token. */
  profile: string;
  /** GitHub's list of the person's addresses, which says which are confirmed (`user:email` scope). */
  emails?: string;
  /** GitHub's list of the person's organizations (`read:org` scope), as the `organizations` claim. */
  organizations?: string;
}

/** Which fields of an `oauth2` provider's profile say who the person is; dotted for nested fields (`data.id`). */
export interface ProfileFields {
  subject: string;
  email: string;
  emailVerified: string;
  name: string;
}

export interface IdentityProvider {
  /** In URLs and in the accounts linked to it: lower-case letters, digits and dashes. */
  id: string;
  type: IdentityProviderType;
  /** On the login page's button: "Continue with <name>". */
  name: string;
  /**
   * `oidc`: the issuer, discovered. `oauth2`: the issuer its answers name (RFC 9207 `iss`), else its authorization
   * endpoint's origin. `github`: the GitHub it is.
   */
  issuer: string;
  /** `oauth2` and `github` only: their endpoints and how their profile reads. */
  endpoints?: OAuthEndpoints;
  profileFields?: ProfileFields;
  clientId: string;
  /** Absent: a public client at the provider, authenticated by PKCE alone. */
  clientSecret?: string;
  /** How the secret is sent to the token endpoint: HTTP Basic (RFC 6749's default) or in the form (GitHub's way). */
  tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
  scope: string;
  /** A first sign-in with no account linked and none with its email address makes an account. */
  createAccounts: boolean;
  /**
   * The provider's `email_verified` is trusted to link an existing account with that address at once (Keycloak's
   * "Trust Email"); otherwise the person proves the account is theirs with its password first.
   */
  trustEmail: boolean;
  /** Added to each authorization request: Google's `prompt=select_account` or `hd`, Entra ID's `domain_hint`, … */
  authorizationParameters: Record<string, string>;
  /** Who may sign in this way: each claim must have one of its values (./mappers.ts). */
  requirements: ClaimRequirement[];
  /** `oidc` only: signing out here of every app signs out at the provider too (./logout.ts). */
  logout?: boolean;
  /** Roles and attributes the provider's claims set on the account (./mappers.ts). */
  mappers: ProviderMappers;
}

/** The authorization parameters by which an app names the provider to sign in with (ours, and Keycloak's). */
export const IDP_HINT_PARAMETERS = ['idp_hint', 'kc_idp_hint'];

/** What each request must carry as we make it: a provider's entry cannot set them. */
const OUR_PARAMETERS = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri', 'response_mode'];

/** A provider's id: in URLs, and in the accounts linked to it (and so in an import's links). */
export const providerId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be 1–32 lower-case letters, digits and dashes')
  // `link` is a path of the sign-in's own (src/interaction/federated-sign-in.ts).
  .refine((id) => id !== 'link', 'link is taken: choose another id');

const httpUrl = (what: string) => z.url({ protocol: /^https?$/, error: `must be the provider’s ${what} URL` });
const scopeValue = z.string({ error: 'must be given: the scope values to ask for, separated by spaces' }).regex(/^\S+( \S+)*$/, 'must be scope values separated by single spaces');
const fieldName = z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'must be a field name, dotted for a nested field');

/** A value a claim is compared with: text, a number or true/false. */
const claimValue = z.union([z.string().max(256), z.number(), z.boolean()]);

/** What every kind of entry has. */
const common = {
  id: providerId,
  name: z.string().trim().min(1).max(60),
  clientId: z.string().min(1).max(512),
  clientSecret: z.string().min(1).max(4096).optional(),
  /** The environment variable holding the secret, so that the file itself holds none. */
  clientSecretEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  createAccounts: z.boolean().default(true),
  trustEmail: z.boolean().default(false),
  authorizationParameters: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a parameter name is letters, digits, _ . and -'), z.string().max(512))
    .refine((parameters) => !Object.keys(parameters).some((name) => OUR_PARAMETERS.includes(name)), `authorizationParameters cannot set ${OUR_PARAMETERS.join(', ')}`)
    .default({}),
  /**
   * Who may sign in this way at all: each requirement's claim must have one of its values (or, a list, hold one):
   * Google Workspace's `hd`, Entra ID's `tid`, GitHub's `organizations` (with read:org).
   */
  require: z
    .array(z.strictObject({ claim: fieldName, values: z.array(claimValue).min(1).max(100) }))
    .max(10)
    .default([]),
  /** Keycloak's "Claim to Role" (a claim and its value) and "Hardcoded Role" (neither) mappers. */
  roles: z
    .array(
      z
        .strictObject({ role: roleName, claim: fieldName.optional(), value: claimValue.optional() })
        .refine((mapper) => (mapper.claim === undefined) === (mapper.value === undefined), 'give claim and value together, or neither for a role everyone signing in this way has'),
    )
    .max(50)
    .default([]),
  /** Keycloak's "Attribute Importer": attribute name → the claim it is copied from. */
  attributes: z
    .record(z.string(), fieldName)
    .superRefine((attributes, ctx) => {
      for (const name of Object.keys(attributes)) {
        if (!ATTRIBUTE_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'an attribute name is a letter, then up to 63 letters, digits, "_", "." or "-"' });
      }
    })
    .default({}),
  /** force: the mapping is applied at every sign-in with the provider; import: once, to the account it makes. */
  syncMode: z.enum(['force', 'import']).default('force'),
};

const openIdEntry = z.strictObject({
  ...common,
  type: z.literal('oidc'),
  issuer: httpUrl('issuer'),
  scope: scopeValue.refine((scope) => scope.split(' ').includes('openid'), 'must include openid').default('openid email profile'),
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  /** Signing out here (of every app) signs out at the provider too, by its end_session_endpoint (./logout.ts). */
  logout: z.boolean().default(false),
});

const gitHubEntry = z.strictObject({
  ...common,
  type: z.literal('github'),
  /** A GitHub Enterprise Server's address; github.com when absent. */
  githubUrl: httpUrl('GitHub Enterprise Server').optional(),
  // read:user for the profile, user:email for the addresses and which are confirmed (most keep theirs private).
  scope: scopeValue.default('read:user user:email'),
});

const oauthEntry = z.strictObject({
  ...common,
  type: z.literal('oauth2'),
  /** Only for a provider whose answers carry `iss` (RFC 9207): they must then name this. */
  issuer: httpUrl('issuer').optional(),
  authorizationEndpoint: httpUrl('authorization endpoint'),
  tokenEndpoint: httpUrl('token endpoint'),
  userinfoEndpoint: httpUrl('userinfo (profile) endpoint'),
  scope: scopeValue,
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  claims: z
    .strictObject({
      subject: fieldName.default('sub'),
      email: fieldName.default('email'),
      emailVerified: fieldName.default('email_verified'),
      name: fieldName.default('name'),
    })
    .default({ subject: 'sub', email: 'email', emailVerified: 'email_verified', name: 'name' }),
});

/** An entry without a `type` is an OpenID Connect provider, as every entry was before the other kinds. */
const providerEntry = z
  .preprocess(
    (entry) => (entry && typeof entry === 'object' && !Array.isArray(entry) && !('type' in entry) ? { ...entry, type: 'oidc' } : entry),
    z.discriminatedUnion('type', [openIdEntry, gitHubEntry, oauthEntry], { error: 'type must be oidc, github or oauth2' }),
  )
  .refine((entry) => !(entry.clientSecret && entry.clientSecretEnv), 'give clientSecret or clientSecretEnv, not both');

const providersFile = z.array(providerEntry).max(20);

type Entry = z.infer<typeof providerEntry>;

/** github.com's API is a host of its own; a GitHub Enterprise Server's is under /api/v3. */
function gitHubEndpoints(githubUrl: string | undefined): { issuer: string; endpoints: OAuthEndpoints } {
  const web = (githubUrl ?? 'https://github.com').replace(/\/+$/, '');
  const api = githubUrl ? `${web}/api/v3` : 'https://api.github.com';
  return {
    issuer: web,
    endpoints: {
      authorization: `${web}/login/oauth/authorize`,
      token: `${web}/login/oauth/access_token`,
      profile: `${api}/user`,
      emails: `${api}/user/emails`,
      organizations: `${api}/user/orgs`,
    },
  };
}

/** The entry as the sign-in uses it, whatever its kind: where to ask, and how to read the answer. */
function providerOf(entry: Entry, clientSecret: string | undefined): IdentityProvider {
  const { id, name, clientId, createAccounts, trustEmail, authorizationParameters, scope, roles, attributes, syncMode } = entry;
  const shared = { id, name, clientId, clientSecret, createAccounts, trustEmail, authorizationParameters, scope, requirements: entry.require, mappers: { roles, attributes, syncMode } };
  switch (entry.type) {
    case 'oidc':
      // The issuer as given: some end with a slash (Auth0's), and discovery compares it exactly.
      return { ...shared, type: 'oidc', issuer: entry.issuer, tokenEndpointAuthMethod: entry.tokenEndpointAuthMethod, logout: entry.logout };
    case 'github':
      // GitHub's token endpoint takes the secret in the form; its profile's `id` is the account's lasting number.
      return {
        ...shared,
        type: 'github',
        ...gitHubEndpoints(entry.githubUrl),
        tokenEndpointAuthMethod: 'client_secret_post',
        profileFields: { subject: 'id', email: 'email', emailVerified: 'email_verified', name: 'name' },
      };
    case 'oauth2':
      return {
        ...shared,
        type: 'oauth2',
        issuer: entry.issuer ?? new URL(entry.authorizationEndpoint).origin,
        endpoints: { authorization: entry.authorizationEndpoint, token: entry.tokenEndpoint, profile: entry.userinfoEndpoint },
        profileFields: entry.claims,
        tokenEndpointAuthMethod: entry.tokenEndpointAuthMethod,
      };
  }
}

/** Every URL the entry sends people or requests to (production takes https only). */
function urlsOf(provider: IdentityProvider): string[] {
  return [provider.issuer, ...Object.values(provider.endpoints ?? {})];
}

/**
 * The providers IDENTITY_PROVIDERS_FILE lists, or every problem with it, one sentence each naming the entry.
 * Production accepts only https issuers; elsewhere http is allowed for a provider on this machine or network.
 */
export function readIdentityProviders(file: string, env: NodeJS.ProcessEnv, production: boolean): { providers: IdentityProvider[]; problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'there is no such file' : (error as Error).message;
    return { providers: [], problems: [`IDENTITY_PROVIDERS_FILE (${file}): ${reason}`] };
  }
  const parsed = providersFile.safeParse(json);
  if (!parsed.success) {
    return { providers: [], problems: parsed.error.issues.map((issue) => `IDENTITY_PROVIDERS_FILE ${describePath(json, issue.path)}: ${issue.message}`) };
  }
  const problems: string[] = [];
  const providers = parsed.data.map((entry, index): IdentityProvider => {
    const where = `IDENTITY_PROVIDERS_FILE ${describePath(json, [index])}`;
    if (parsed.data.findIndex((other) => other.id === entry.id) !== index) problems.push(`${where}: the id ${entry.id} is used twice`);
    const clientSecret = entry.clientSecretEnv ? env[entry.clientSecretEnv] : entry.clientSecret;
    if (entry.clientSecretEnv && !clientSecret) problems.push(`${where}: ${entry.clientSecretEnv} (its clientSecretEnv) is not set`);
    // GitHub takes no public clients: its token endpoint wants the secret even with PKCE.
    if (entry.type === 'github' && !clientSecret) problems.push(`${where}: GitHub needs clientSecret or clientSecretEnv`);
    const provider = providerOf(entry, clientSecret);
    const insecure = urlsOf(provider).filter((url) => !url.startsWith('https://'));
    if (production && insecure.length > 0) problems.push(`${where}: its URLs must be https in production (got ${insecure.join(', ')})`);
    return provider;
  });
  return { providers, problems };
}

/** `[1] (corp).issuer`: where in the file a problem is, by index and, when it has one, the entry's id. */
function describePath(json: unknown, issuePath: readonly PropertyKey[]): string {
  const [index, ...rest] = issuePath;
  if (typeof index !== 'number') return '';
  const id = Array.isArray(json) ? (json[index] as { id?: unknown } | undefined)?.id : undefined;
  return `[${index}]${typeof id === 'string' ? ` (${id.slice(0, 32)})` : ''}${rest.map((key) => `.${String(key)}`).join('')}`;
}
