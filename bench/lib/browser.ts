/**
 * A browser stand-in for the full sign-in: keeps cookies (ignoring Secure, as the TLS proxy would not),
 * follows redirects by hand, reads the CSRF field of our login and consent forms and posts them.
 */
import { FORWARDED } from './processes.js';

export interface WebClient {
  clientId: string;
  secret: string;
  redirectUri: string;
}

export interface SignIn {
  email: string;
  password: string;
  scope: string;
  prompt?: string;
}

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
}

export class Browser {
  readonly #cookies = new Map<string, string>();

  constructor(private readonly base: string) {}

  async request(target: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const url = new URL(target, this.base);
    const headers: Record<string, string> = { ...FORWARDED, ...init.headers };
    if (this.#cookies.size > 0) headers.cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    // Whatever host the issuer names, the request goes to the local server.
    const response = await fetch(new URL(url.pathname + url.search, this.base), { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      if (value === '' || /max-age=0|expires=Thu, 01 Jan 1970/i.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  /** authorize → login form (CSRF) → [consent form] → code → token exchange. */
  async signIn(client: WebClient, user: SignIn): Promise<Tokens> {
    this.#cookies.clear();
    const authorize = new URLSearchParams({
      client_id: client.clientId,
      response_type: 'code',
      scope: user.scope,
      redirect_uri: client.redirectUri,
      state: 'bench-state',
      nonce: 'bench-nonce',
    });
    if (user.prompt) authorize.set('prompt', user.prompt);
    let location = await this.#redirect(await this.request(`/auth?${authorize}`));
    for (let step = 0; step < 6; step++) {
      if (location.startsWith(client.redirectUri)) return this.#redeem(client, location);
      const page = await this.request(location);
      const html = await page.text();
      if (page.status !== 200) throw new Error(`${location} answered ${page.status}`);
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
      const action = /<form method="post" action="([^"]+\/(?:login|confirm))"/.exec(html)?.[1];
      if (!csrf || !action) throw new Error(`no login or consent form at ${location}`);
      const form = new URLSearchParams({ csrf });
      if (action.endsWith('/login')) {
        form.set('email', user.email);
        form.set('password', user.password);
      }
      const posted = await this.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      location = await this.#redirect(await this.request(await this.#redirect(posted)));
    }
    throw new Error('sign-in did not reach the redirect_uri');
  }

  async #redirect(response: Response): Promise<string> {
    await response.arrayBuffer();
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) throw new Error(`expected a redirect, got ${response.status}`);
    return location;
  }

  async #redeem(client: WebClient, location: string): Promise<Tokens> {
    const code = new URL(location).searchParams.get('code');
    if (!code) throw new Error(`no code in ${location}`);
    const response = await this.request('/token', {
      method: 'POST',
      headers: {
        authorization: basic(client.clientId, client.secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri }).toString(),
    });
    const body = (await response.json()) as Tokens & { error?: string };
    if (response.status !== 200) throw new Error(`token exchange answered ${response.status} ${body.error}`);
    return body;
  }
}

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
