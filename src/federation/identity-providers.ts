/**
 * The other identity providers people may sign in with (Keycloak's "Identity Providers", Logto's social
 * connectors): any OpenID Connect provider (Google, Microsoft Entra ID, GitLab, Okta, another Keycloak, another of
 * us), listed in a JSON file named by IDENTITY_PROVIDERS_FILE and read once, when the configuration is loaded:
 *
 *   [{ "id": "google", "name": "Google", "issuer": "https://accounts.google.com",
 *      "clientId": "…apps.googleusercontent.com", "clientSecretEnv": "GOOGLE_CLIENT_SECRET" }]
 *
 * Each is registered there with the redirect URI `<ISSUER>/federation/<id>/callback`: one per provider, so that
 * an answer cannot be passed off as another provider's (the mix-up attack, RFC 9700 §4.4).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export interface IdentityProvider {
  /** In URLs and in the accounts linked to it: lower-case letters, digits and dashes. */
  id: string;
  /** On the login page's button: "Continue with <name>". */
  name: string;
  issuer: string;
  clientId: string;
  /** Absent: a public client at the provider, authenticated by PKCE alone. */
  clientSecret?: string;
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

const providerEntry = z
  .strictObject({
    id: providerId,
    name: z.string().trim().min(1).max(60),
    issuer: z.url({ protocol: /^https?$/, error: 'must be the provider’s issuer URL' }),
    clientId: z.string().min(1).max(512),
    clientSecret: z.string().min(1).max(4096).optional(),
    /** The environment variable holding the secret, so that the file itself holds none. */
    clientSecretEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
    scope: z.string().regex(/^\S+( \S+)*$/).default('openid email profile'),
    createAccounts: z.boolean().default(true),
    trustEmail: z.boolean().default(false),
    authorizationParameters: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a parameter name is letters, digits, _ . and -'), z.string().max(512))
      .refine((parameters) => !Object.keys(parameters).some((name) => OUR_PARAMETERS.includes(name)), `authorizationParameters cannot set ${OUR_PARAMETERS.join(', ')}`)
      .default({}),
  })
  .refine((entry) => !(entry.clientSecret && entry.clientSecretEnv), 'give clientSecret or clientSecretEnv, not both')
  .refine((entry) => entry.scope.split(' ').includes('openid'), 'scope must include openid');

const providersFile = z.array(providerEntry).max(20);

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
    if (production && !entry.issuer.startsWith('https://')) problems.push(`${where}: the issuer must be https in production (got ${entry.issuer})`);
    const clientSecret = entry.clientSecretEnv ? env[entry.clientSecretEnv] : entry.clientSecret;
    if (entry.clientSecretEnv && !clientSecret) problems.push(`${where}: ${entry.clientSecretEnv} (its clientSecretEnv) is not set`);
    const { clientSecretEnv: _, ...rest } = entry;
    // The issuer as given: some end with a slash (Auth0's), and discovery compares it exactly.
    return { ...rest, clientSecret };
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
