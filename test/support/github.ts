/**
 * A GitHub Enterprise Server as far as signing in with it goes, for the tests (github.com cannot be reached from
 * them): its OAuth app endpoints at /login/oauth/…, and its REST API at /api/v3 (/user, /user/emails), answering
 * as GitHub documents and does, quirks included:
 * - the token endpoint answers a code it will not redeem with **200** and an error in the body, and answers JSON
 *   only when asked to (`Accept: application/json`), a form otherwise;
 * - a code works once, for its client, its redirect URI and its PKCE verifier, for ten minutes;
 * - the API wants a User-Agent and a token (`Bearer` or `token`), and answers 404 for what the token's scopes do not
 *   reach (the addresses, without user:email); the organizations listed without read:org are the public ones;
 * - the profile's `email` is the public address or null, and only the list of addresses says which are confirmed.
 *
 * Who is signed in there is set by the test (`signIn`), as if the person had signed in and authorized the app.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  /** The public address, or null where the person keeps theirs private. */
  publicEmail: string | null;
  emails: { email: string; primary: boolean; verified: boolean; visibility: 'public' | 'private' | null }[];
  /** A GitHub Enterprise Server's administrator. */
  siteAdmin?: boolean;
  /** The organizations the person belongs to, by login; `public`: the membership is public. */
  organizations?: { login: string; public: boolean }[];
}

interface Grant {
  user: GitHubUser;
  clientId: string;
  redirectUri: string;
  scope: string;
  challenge?: string;
  expiresAt: number;
}

export class FakeGitHub {
  readonly url: string;
  /** What each request to the token endpoint carried: how the secret was sent, and what it asked to be answered in. */
  readonly tokenRequests: { authorization?: string; accept?: string; body: Record<string, string> }[] = [];
  #signedIn: GitHubUser | undefined;
  /** The person pressed "Cancel" on the authorization page. */
  #denies = false;
  readonly #codes = new Map<string, Grant>();
  readonly #tokens = new Map<string, Grant>();

  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    private readonly apps: Map<string, { secret: string; callback: string }>,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(): Promise<FakeGitHub> {
    const apps = new Map<string, { secret: string; callback: string }>();
    let github: FakeGitHub | undefined;
    const server = createServer((request, response) => {
      github
        ?.handle(request)
        .then((answer) => response.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', ...answer.headers }).end(answer.body))
        .catch((error: unknown) => response.writeHead(500).end(String(error)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    github = new FakeGitHub(server, apps);
    return github;
  }

  /** An OAuth app, with its one callback URL, as registered in GitHub's developer settings. */
  registerApp(clientId: string, secret: string, callback: string): void {
    this.apps.set(clientId, { secret, callback });
  }

  /** The person signed in at GitHub from now on, who authorizes the app when asked; undefined: they cancel. */
  signIn(user: GitHubUser | undefined): void {
    this.#signedIn = user;
    this.#denies = user === undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage): Promise<Answer> {
    const url = new URL(request.url ?? '/', this.url);
    if (request.method === 'GET' && url.pathname === '/login/oauth/authorize') return this.authorize(url);
    if (request.method === 'POST' && url.pathname === '/login/oauth/access_token') return this.token(request);
    if (request.method === 'GET' && url.pathname.startsWith('/api/v3/')) return this.api(request, url.pathname.slice('/api/v3'.length));
    return json(404, { message: 'Not Found' });
  }

  private authorize(url: URL): Answer {
    const clientId = url.searchParams.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    const redirectUri = url.searchParams.get('redirect_uri') ?? app?.callback ?? '';
    // GitHub shows its own error page for an unknown app or a redirect URI outside the app's callback URL.
    if (!app || redirectUri !== app.callback) return json(400, { message: 'The redirect_uri is not associated with this application.' });
    const back = new URL(redirectUri);
    const state = url.searchParams.get('state');
    if (state !== null) back.searchParams.set('state', state);
    if (this.#denies || !this.#signedIn) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
    } else {
      const code = randomBytes(10).toString('hex');
      const challenge = url.searchParams.get('code_challenge') ?? undefined;
      if (challenge && url.searchParams.get('code_challenge_method') !== 'S256') return json(400, { message: 'code_challenge_method must be S256' });
      this.#codes.set(code, { user: this.#signedIn, clientId, redirectUri, scope: url.searchParams.get('scope') ?? '', challenge, expiresAt: Date.now() + 600_000 });
      back.searchParams.set('code', code);
    }
    return { status: 302, headers: { location: back.href } };
  }

  private async token(request: IncomingMessage): Promise<Answer> {
    const body = Object.fromEntries(new URLSearchParams(await readBody(request)));
    const inJson = (request.headers.accept ?? '').includes('application/json');
    this.tokenRequests.push({ authorization: request.headers.authorization, accept: request.headers.accept, body });
    // Always 200, errors too; JSON only when asked for.
    const answer = (fields: Record<string, string>): Answer =>
      inJson ? json(200, fields) : { status: 200, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: new URLSearchParams(fields).toString() };
    // In the form, as GitHub documents; by HTTP Basic too, the standard way an `oauth2` entry sends them.
    const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const [clientId, secret] = basic ? Buffer.from(basic, 'base64').toString().split(':').map(decodeURIComponent) : [body.client_id, body.client_secret];
    const app = this.apps.get(clientId ?? '');
    if (!app || app.secret !== secret) return answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
    const grant = this.#codes.get(body.code ?? '');
    this.#codes.delete(body.code ?? '');
    const unredeemable = !grant || grant.clientId !== clientId || grant.expiresAt < Date.now();
    if (unredeemable) return answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
    if (body.redirect_uri && body.redirect_uri !== grant.redirectUri) return answer({ error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.' });
    if (grant.challenge && createHash('sha256').update(body.code_verifier ?? '').digest('base64url') !== grant.challenge) {
      return answer({ error: 'invalid_grant', error_description: 'The code_verifier does not match the code_challenge.' });
    }
    const token = `gho_${randomBytes(18).toString('hex')}`;
    this.#tokens.set(token, grant);
    // GitHub lists the granted scopes with commas.
    return answer({ access_token: token, token_type: 'bearer', scope: grant.scope.split(' ').join(',') });
  }

  private api(request: IncomingMessage, path: string): Answer {
    if (!request.headers['user-agent']) return json(403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.' });
    const token = /^(?:Bearer|token) (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const grant = token ? this.#tokens.get(token) : undefined;
    if (!grant) return json(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    const { user, scope } = grant;
    if (path === '/user') {
      return json(200, { login: user.login, id: user.id, node_id: `U_${user.id}`, type: 'User', site_admin: user.siteAdmin ?? false, name: user.name, email: user.publicEmail, created_at: '2020-01-01T00:00:00Z' });
    }
    if (path === '/user/emails' && scope.split(' ').includes('user:email')) return json(200, user.emails);
    // Without read:org, only the memberships the person made public.
    if (path === '/user/orgs') {
      const seen = (user.organizations ?? []).filter((organization) => organization.public || scope.split(' ').includes('read:org'));
      return json(200, seen.map((organization, index) => ({ login: organization.login, id: 9000 + index, description: null })));
    }
    return json(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  }
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

const json = (status: number, body: unknown): Answer => ({ status, body: JSON.stringify(body) });

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

let nextId = 583_231;

/** A GitHub account: its primary address confirmed and private, unless told otherwise. */
export function gitHubUser(options: { email?: string; verified?: boolean; publicEmail?: boolean; name?: string | null } = {}): GitHubUser {
  nextId += 1;
  const email = options.email ?? `octo${nextId}.${Date.now()}@example.test`;
  return {
    id: nextId,
    login: `octo${nextId}`,
    name: options.name === undefined ? `Octo ${nextId}` : options.name,
    publicEmail: options.publicEmail ? email : null,
    emails: [
      { email: `${nextId}+octo${nextId}@users.noreply.github.com`, primary: false, verified: true, visibility: null },
      { email, primary: true, verified: options.verified ?? true, visibility: options.publicEmail ? 'public' : 'private' },
    ],
  };
}
