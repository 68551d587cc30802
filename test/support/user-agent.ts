/**
 * A browser stand-in for end-to-end tests that need no rendering: it follows redirects by hand, keeps cookies,
 * reads our pages' forms (including their hidden CSRF fields) and submits them, the way a person's browser would.
 * Pages themselves are tested in a real Chromium (test/browser/).
 */

export interface FormField {
  name: string;
  value: string;
  type: string;
}

export interface HtmlForm {
  action: string;
  method: string;
  fields: FormField[];
}

const decodeEntities = (text: string) =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  if (!match) return undefined;
  return decodeEntities(match[1] ?? match[2] ?? match[3] ?? '');
}

/** Every form on the page with its inputs and buttons (name/value pairs as a browser would submit them). */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const [, openTag = '', body = ''] = match;
    const fields: FormField[] = [];
    for (const input of body.matchAll(/<(input|button)\b([^>]*)>/gi)) {
      const tag = input[2] ?? '';
      const name = attribute(tag, 'name');
      if (!name) continue;
      const type = attribute(tag, 'type') ?? input[1]!.toLowerCase();
      // An unticked box is not sent (a test ticks one by naming it in the values it submits), nor a disabled field.
      if ((type === 'checkbox' || type === 'radio') && !/\schecked\b/i.test(tag)) continue;
      if (/\sdisabled\b/i.test(tag)) continue;
      fields.push({ name, value: attribute(tag, 'value') ?? '', type });
    }
    forms.push({ action: attribute(openTag, 'action') ?? '', method: (attribute(openTag, 'method') ?? 'get').toLowerCase(), fields });
  }
  return forms;
}

/** A page's words as a person reads them: inline tags (strong, a, span) vanish, the others become spaces. */
export const textOf = (page: Page | undefined) =>
  (page?.html ?? '')
    .replace(/<\/?(strong|a|span)\b[^>]*>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ');

/** The page's form whose action ends with `actionSuffix`; when there is none, an error that shows the page. */
export function formOf(page: Page, actionSuffix: string): HtmlForm {
  const form = parseForms(page.html).find((candidate) => candidate.action.split('?')[0]?.endsWith(actionSuffix));
  if (!form) throw new Error(`no ${actionSuffix} form on ${page.url} (${page.status}): ${textOf(page).slice(0, 300)}`);
  return form;
}

export interface Page {
  url: string;
  status: number;
  html: string;
  headers: Headers;
}

/** Chromium's Accept header for a navigation. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

export class UserAgent {
  readonly #cookies = new Map<string, string>();
  /** The last Set-Cookie line received for each cookie, attributes and all. */
  readonly #setCookieLines = new Map<string, string>();

  /** @param send what carries the requests: `fetch`, or a stand-in for what sits between browser and server */
  constructor(private readonly send: typeof fetch = fetch) {}

  /** Cookies by name (host-wide; tests use one host). */
  get cookies(): ReadonlyMap<string, string> {
    return this.#cookies;
  }

  /** The last Set-Cookie line the server sent for `name` (to read its Expires, Secure, …), if any. */
  setCookieLine(name: string): string | undefined {
    return this.#setCookieLines.get(name);
  }

  clearCookies(): void {
    this.#cookies.clear();
  }

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    // What a browser asks for when it opens a page or submits a form: the server answers errors as pages.
    if (!headers.has('accept')) headers.set('accept', BROWSER_ACCEPT);
    if (this.#cookies.size > 0) {
      headers.set('cookie', [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; '));
    }
    const response = await this.send(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) this.#remember(line);
    return response;
  }

  #remember(setCookie: string): void {
    const [pair = ''] = setCookie.split(';');
    const at = pair.indexOf('=');
    const name = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    this.#setCookieLines.set(name, setCookie);
    const expired = /max-age=0|expires=Thu, 01 Jan 1970/i.test(setCookie);
    if (expired || value === '') this.#cookies.delete(name);
    else this.#cookies.set(name, value);
  }

  /**
   * Follows redirects from `url` until a page answers, or until a redirect leaves `origin` (the client's
   * redirect_uri): that URL is returned as `redirectedTo` without being fetched.
   */
  async follow(url: string, origin: string, init: RequestInit = {}): Promise<{ page?: Page; redirectedTo?: URL }> {
    let next = new URL(url);
    let response = await this.request(next.href, init);
    for (let hops = 0; hops < 20; hops++) {
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) {
        return { page: { url: next.href, status: response.status, html: await response.text(), headers: response.headers } };
      }
      await response.body?.cancel();
      next = new URL(location, next);
      if (next.origin !== origin) return { redirectedTo: next };
      response = await this.request(next.href);
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits `form` with `values` filled in over its own fields (hidden CSRF fields included). */
  async submit(page: Page, form: HtmlForm, values: Record<string, string>, origin: string) {
    const body = new URLSearchParams();
    for (const field of form.fields) {
      if (field.type === 'submit' || field.type === 'button') continue;
      body.set(field.name, field.value);
    }
    for (const [name, value] of Object.entries(values)) body.set(name, value);
    if (form.method === 'get') {
      const target = new URL(form.action, page.url);
      target.search = body.toString();
      return this.follow(target.href, origin);
    }
    return this.follow(new URL(form.action, page.url).href, origin, {
      method: form.method.toUpperCase(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
  }
}

/**
 * A browser whose requests reach the server through a TLS-terminating proxy (PROXY=true), which appends the
 * browser's address to X-Forwarded-For: tests speak from client addresses of their own.
 */
export class BrowserAt extends UserAgent {
  constructor(private readonly forwardedFor: string) {
    super();
  }

  override request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('x-forwarded-for', this.forwardedFor);
    return super.request(url, { ...init, headers });
  }
}

export interface SignInOptions {
  email: string;
  password: string;
  /** What to do if a consent page appears. */
  consent?: 'allow' | 'deny';
  /** Tick "Keep me signed in" (LOGIN_REMEMBER_ME=ask). */
  remember?: boolean;
}

export interface SignInResult {
  /** Where the server finally sent the browser (the client's redirect_uri with code or error). */
  redirectedTo: URL;
  sawLoginPage: boolean;
  sawConsentPage: boolean;
  /** The consent page as it was shown, if it was. */
  consentPage?: Page;
}

const findForm = (page: Page, actionSuffix: string) =>
  parseForms(page.html).find((form) => form.action.split('?')[0]?.endsWith(actionSuffix));

/** Drives an authorization request through our login and consent pages like a person would. */
export async function signIn(agent: UserAgent, authorizationUrl: string, options: SignInOptions): Promise<SignInResult> {
  const origin = new URL(authorizationUrl).origin;
  const { step, sawLoginPage, sawConsentPage, consentPage } = await passSignInPages(agent, await agent.follow(authorizationUrl, origin), origin, options);
  if (step.page) throw new Error(`unexpected page ${step.page.url} (${step.page.status}): ${step.page.html.slice(0, 500)}`);
  if (!step.redirectedTo) throw new Error('sign-in did not reach the client');
  return { redirectedTo: step.redirectedTo, sawLoginPage, sawConsentPage, consentPage };
}

type Step = Awaited<ReturnType<UserAgent['follow']>>;

/**
 * Fills in the login page and answers the consent page, whichever come, and stops at the first page that is
 * neither (or at a redirect away from `origin`).
 */
export async function passSignInPages(agent: UserAgent, first: Step, origin: string, options: SignInOptions) {
  let step = first;
  let sawLoginPage = false;
  let sawConsentPage = false;
  let consentPage: Page | undefined;
  for (let round = 0; round < 4 && step.page; round++) {
    const page: Page = step.page;
    const login = findForm(page, '/login');
    const confirm = findForm(page, '/confirm');
    if (login) {
      if (sawLoginPage) throw new Error(`sign-in was refused: ${page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
      sawLoginPage = true;
      const values: Record<string, string> = { email: options.email, password: options.password };
      if (options.remember) values.remember = 'yes';
      step = await agent.submit(page, login, values, origin);
    } else if (confirm) {
      sawConsentPage = true;
      consentPage = page;
      const deny = findForm(page, '/abort');
      if (options.consent === 'deny' && deny) step = await agent.submit(page, deny, {}, origin);
      else step = await agent.submit(page, confirm, {}, origin);
    } else {
      break;
    }
  }
  return { step, sawLoginPage, sawConsentPage, consentPage };
}
