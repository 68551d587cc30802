/**
 * A deployment's own look (THEME_DIR): the theme's stylesheet and logo are in every page and the code flow goes on
 * through them as before; its error page replaces ours and escapes what it prints; its assets are served whole,
 * with their type and an ETag, and ours stay where the theme has none; its mail/ folder is the mail templates.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from 'koa';
import type * as oidc from 'openid-client';
import { findViewsDir, Views } from '../../src/interaction/views.js';
import { BRAND_CSS, LOGO_PNG, writeExampleTheme } from '../support/example-theme.js';
import { type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { type Fixtures, createUser, createWebClient, discover, openLoginPage, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page } from '../support/user-agent.js';

let theme: string;
let mail: MailCatcher;
let server: TestServer;
let rp: oidc.Configuration;
let clientId: string;
let user: Fixtures;

beforeAll(async () => {
  theme = await writeExampleTheme();
  mail = await startMailCatcher();
  server = await startTestServer({ env: { THEME_DIR: theme, SMTP_URL: mail.url } });
  const web = await createWebClient(server);
  clientId = web.clientId;
  rp = await discover(server, web.clientId, web.secret);
  user = await createUser(server);
});
afterAll(async () => {
  await server.close();
  await mail.close();
  await rm(theme, { recursive: true, force: true });
});

const get = (pathname: string, headers: Record<string, string> = {}) => fetch(`${server.url}${pathname}`, { headers });

test('the login page carries the theme’s stylesheet after ours and its header above the card; the code flow goes through', async () => {
  const { page } = await openLoginPage(server, clientId);
  const html = page.html;
  expect(html.indexOf('<link rel="stylesheet" href="/assets/brand.css">')).toBeGreaterThan(html.indexOf('href="/assets/style.css"'));
  expect(html.indexOf('<header class="brand"><img src="/assets/logo.png" alt="Example Corp"></header>')).toBeLessThan(html.indexOf('<main'));

  const { tokens } = await signInAndRedeem(rp, user);
  expect(tokens.claims()?.email).toBe(user.email);
});

test('the theme’s error page replaces ours; what it prints is escaped as in ours', async () => {
  const response = await get(`/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://app.example.test/cb')}`, {
    accept: 'text/html',
  });
  expect(response.status).toBe(400);
  const html = await response.text();
  expect(html).toContain('<h1>Example Corp could not go on</h1>');
  expect(html).toContain('Code: invalid_client');
  expect(html).toContain('<header class="brand">');

  // The same environment renders every page: a message with markup in it stays text.
  const ctx = { set: () => undefined } as unknown as Context;
  new Views({ themeDir: theme }).render(ctx, 'error.njk', { message: '<script>alert(1)</script>', code: 'x' });
  expect(ctx.body).toContain('<p class="message">&lt;script&gt;alert(1)&lt;/script&gt;</p>');
});

test('the theme’s assets are served whole with their type and an ETag; ours stay where it has none', async () => {
  const css = await get('/assets/brand.css');
  expect(css.status).toBe(200);
  expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
  expect(css.headers.get('cache-control')).toBe('public, max-age=3600');
  expect(await css.text()).toBe(BRAND_CSS);
  const etag = css.headers.get('etag') as string;
  expect(etag).toMatch(/^"[\w-]{27}"$/);
  // As a browser revalidates (fetch() alone would add `Cache-Control: no-cache`, which asks for the body again).
  const revalidated = await get('/assets/brand.css', { 'if-none-match': etag, 'cache-control': 'max-age=0' });
  expect(revalidated.status).toBe(304);
  expect(await revalidated.text()).toBe('');

  const logo = await get('/assets/logo.png');
  expect(logo.headers.get('content-type')).toBe('image/png');
  expect(Buffer.from(await logo.arrayBuffer()).equals(LOGO_PNG)).toBe(true);
  const head = await fetch(`${server.url}/assets/logo.png`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('content-length')).toBe(String(LOGO_PNG.length));

  const ours = await get('/assets/style.css');
  expect(await ours.text()).toBe(await readFile(path.join(findViewsDir(), 'assets', 'style.css'), 'utf8'));
  expect((await get('/assets/passkeys.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8');

  // Nothing else of the theme folder, or beyond it, is reachable.
  for (const pathname of ['/assets/missing.css', '/assets/../theme-head.njk', '/assets/%2e%2e/error.njk', '/assets/..%2Ferror.njk', '/assets/mail/password-reset.subject.njk']) {
    const response = await get(pathname);
    expect({ pathname, refused: [400, 404].includes(response.status) }).toEqual({ pathname, refused: true });
    expect(await response.text()).not.toContain('Example Corp: a new password');
  }
  const posted = await fetch(`${server.url}/assets/brand.css`, { method: 'POST' });
  expect(posted.status).toBe(404);
});

test('the theme’s mail/ folder writes the mail it has a template for: its subject over our body', async () => {
  const { page: login, agent } = await openLoginPage(server, clientId);
  const forgot = /href="(\/account\/password-reset\?from=[^"]+)"/.exec(login.html)?.[1];
  if (!forgot) throw new Error('the themed login page offers no "Forgot your password?"');
  const { page: form } = await agent.follow(`${server.issuer}${forgot.replaceAll('&amp;', '&')}`, server.issuer);
  expect(form?.html).toContain('<header class="brand">');
  await agent.submit(form as Page, formOf(form as Page, '/account/password-reset'), { email: user.email }, server.issuer);
  const received = await mail.next(user.email);
  expect(received.subject).toBe(`Example Corp: a new password for ${user.email}`);
  expect(linkIn(received, `${server.issuer}/account/password-reset/new?token=`)).toBeTruthy();
});
