/**
 * Signing in with GitHub, and with any plain OAuth 2.0 provider (`type: oauth2`), over HTTP. GitHub cannot be
 * reached from the tests, so it is a GitHub Enterprise Server of the tests' own (test/support/github.ts), which
 * answers as GitHub does, quirks included; the server under test reaches it by `githubUrl`, as it would a real
 * one, and runs the same code for github.com with its two hosts. The app signs in with openid-client and reads in
 * the ID token who signed in.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { FakeGitHub, type GitHubUser, gitHubUser } from '../support/github.js';
import { PASSWORD, codeFlowRequest, createWebClient, discover, idTokenClaims } from '../support/relying-party.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, formOf, textOf } from '../support/user-agent.js';

let github: FakeGitHub;
let server: TestServer;
let rp: oidc.Configuration;

/** The apps registered at GitHub: ours through the `github` entry, one asking no addresses, and the `oauth2` entry's. */
const APPS = {
  github: { clientId: 'Iv23liGitHubApp', secret: 'github-app-secret' },
  'github-public': { clientId: 'Iv23liPublicOnly', secret: 'public-only-secret' },
  forge: { clientId: 'forge-app', secret: 'forge-app-secret' },
  'github-acme': { clientId: 'Iv23liAcmeOnly', secret: 'acme-only-secret' },
};

beforeAll(async () => {
  github = await FakeGitHub.start();
  const file = path.join(tmpdir(), `identity-providers-github-${process.pid}-${Date.now()}.json`);
  const api = `${github.url}/api/v3`;
  await writeFile(
    file,
    JSON.stringify([
      // The account GitHub makes gets a role and its login as an attribute, once (syncMode import).
      {
        id: 'github',
        type: 'github',
        name: 'GitHub',
        githubUrl: github.url,
        clientId: APPS.github.clientId,
        clientSecretEnv: 'GITHUB_SECRET',
        roles: [{ role: 'developer' }],
        attributes: { github_login: 'login' },
        syncMode: 'import',
      },
      { id: 'github-public', type: 'github', name: 'GitHub (public)', githubUrl: github.url, clientId: APPS['github-public'].clientId, clientSecret: APPS['github-public'].secret, scope: 'read:user' },
      // Only members of the acme organization; those of acme-admins are admins here.
      {
        id: 'github-acme',
        type: 'github',
        name: 'GitHub (Acme)',
        githubUrl: github.url,
        clientId: APPS['github-acme'].clientId,
        clientSecret: APPS['github-acme'].secret,
        scope: 'read:user user:email read:org',
        require: [{ claim: 'organizations', values: ['acme'] }],
        roles: [{ role: 'admin', claim: 'organizations', value: 'acme-admins' }],
      },
      {
        id: 'forge',
        type: 'oauth2',
        name: 'Forge',
        authorizationEndpoint: `${github.url}/login/oauth/authorize`,
        tokenEndpoint: `${github.url}/login/oauth/access_token`,
        userinfoEndpoint: `${api}/user`,
        scope: 'read:user',
        clientId: APPS.forge.clientId,
        clientSecret: APPS.forge.secret,
        claims: { subject: 'id', name: 'login' },
        // At every sign-in (syncMode force): a role for the site's admins, the login as an attribute.
        roles: [{ role: 'forge-admin', claim: 'site_admin', value: true }],
        attributes: { forge_login: 'login' },
      },
    ]),
  );
  server = await startTestServer({ host: 'localhost', env: { IDENTITY_PROVIDERS_FILE: file, GITHUB_SECRET: APPS.github.secret } });
  for (const [id, app] of Object.entries(APPS)) github.registerApp(app.clientId, app.secret, `${server.issuer}/federation/${id}/callback`);
  const app = await createWebClient(server, { firstParty: true });
  rp = await discover(server, app.clientId, app.secret);
});
afterAll(async () => {
  await server?.close();
  await github?.close();
});

/** The app's authorization request, our login page, "Continue with …", GitHub (signed in as `user`), and back. */
async function signInWith(provider: string, user: GitHubUser | undefined, browser = new UserAgent()) {
  github.signIn(user);
  const request = await codeFlowRequest(rp, { scope: 'openid email profile' });
  const { page } = await browser.follow(request.url.href, server.issuer);
  if (!page) throw new Error('no login page');
  const sent = await browser.submit(page, formOf(page, `/federated/${provider}`), {}, server.issuer);
  const asked = sent.redirectedTo;
  if (!asked) throw new Error(`not sent to the provider: ${textOf(sent.page).slice(0, 300)}`);
  const atGitHub = await fetch(asked, { redirect: 'manual' });
  const callback = new URL(atGitHub.headers.get('location') ?? '');
  const after = await browser.follow(callback.href, server.issuer);
  return { browser, request, asked, callback, after };
}

const idTokenOf = (redirectedTo: URL | undefined, request: Awaited<ReturnType<typeof codeFlowRequest>>) => idTokenClaims(rp, redirectedTo, request);

const audited = async (type: string) => {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 1000 });
};

test('GitHub: a first sign-in makes an account with the confirmed primary address (kept private there), linked by GitHub’s id; the next finds it by that id', async () => {
  const octo = gitHubUser();
  const primary = octo.emails.find((entry) => entry.primary)?.email as string;
  const { asked, after, request } = await signInWith('github', octo);
  // The request: GitHub's authorize endpoint, our redirect URI, PKCE S256, the default scopes, and no nonce (no ID token).
  expect(`${asked.origin}${asked.pathname}`).toBe(`${github.url}/login/oauth/authorize`);
  expect(asked.searchParams.get('redirect_uri')).toBe(`${server.issuer}/federation/github/callback`);
  expect(asked.searchParams.get('scope')).toBe('read:user user:email');
  expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
  expect(asked.searchParams.get('nonce')).toBeNull();
  // The secret in the form, as GitHub documents, and the answer asked for as JSON.
  const redemption = github.tokenRequests.at(-1);
  expect(redemption?.authorization).toBeUndefined();
  expect(redemption?.body).toMatchObject({ client_id: APPS.github.clientId, client_secret: APPS.github.secret, grant_type: 'authorization_code' });
  expect(redemption?.accept).toContain('application/json');

  const claims = await idTokenOf(after.redirectedTo, request);
  expect(claims.amr).toEqual(['fed']);
  expect(claims.email).toBe(primary);
  expect(claims.email_verified).toBe(true);
  const account = await server.services.users.findByEmail(primary);
  // The mapping, applied to the account the sign-in made.
  expect(account).toMatchObject({ id: claims.sub, name: octo.name, roles: ['developer'], attributes: { github_login: octo.login } });
  expect(await server.services.linkedIdentities.listFor(claims.sub)).toEqual([expect.objectContaining({ provider: 'github', subject: String(octo.id), email: primary })]);

  // The person changes their address (and login) at GitHub: the same account, found by the id.
  const moved: GitHubUser = { ...octo, login: `${octo.login}-renamed`, emails: [{ email: `moved.${Date.now()}@example.test`, primary: true, verified: true, visibility: 'private' }] };
  await server.services.users.setRoles(claims.sub, []);
  const again = await signInWith('github', moved);
  expect((await idTokenOf(again.after.redirectedTo, again.request)).sub).toBe(claims.sub);
  // syncMode import: the mapping made the account once; administrators keep it from then on.
  expect(await server.services.users.findById(claims.sub)).toMatchObject({ roles: [], attributes: { github_login: octo.login } });
  const signIns = (await audited('sign_in')).filter((event) => event.accountId === claims.sub);
  expect(signIns.map((event) => [event.outcome, event.detail?.via])).toEqual([
    ['success', 'github'],
    ['success', 'github'],
  ]);
});

test('GitHub: a person without a name is named by their login; an unconfirmed primary address makes no account; an existing account is linked with its password', async () => {
  const nameless = gitHubUser({ name: null });
  const { after, request } = await signInWith('github', nameless);
  const { sub } = await idTokenOf(after.redirectedTo, request);
  expect((await server.services.users.findById(sub))?.name).toBe(nameless.login);

  const unconfirmed = gitHubUser({ verified: false });
  const refused = await signInWith('github', unconfirmed);
  expect(refused.after.page?.status).toBe(403);
  expect(textOf(refused.after.page)).toContain(`GitHub has not confirmed your address, ${unconfirmed.emails[1]?.email}.`);
  expect(await server.services.users.findByEmail(unconfirmed.emails[1]?.email ?? '')).toBeUndefined();

  const octo = gitHubUser();
  const address = octo.emails[1]?.email as string;
  const mine = await server.services.users.create({ email: address, password: PASSWORD, roles: [], emailVerified: true });
  const { after: linkPage, browser, request: linking } = await signInWith('github', octo);
  expect(textOf(linkPage.page)).toContain(`There is already an account here for ${address}`);
  const linked = await browser.submit(linkPage.page as Page, formOf(linkPage.page as Page, '/federated/link'), { password: PASSWORD }, server.issuer);
  expect(await idTokenOf(linked.redirectedTo, linking)).toMatchObject({ sub: mine.id, amr: ['pwd', 'fed'] });
});

test('GitHub without the user:email scope: only a public address, never taken as confirmed', async () => {
  const privateOnly = gitHubUser();
  const noAddress = await signInWith('github-public', privateOnly);
  expect(noAddress.asked.searchParams.get('scope')).toBe('read:user');
  expect(noAddress.after.page?.status).toBe(403);
  expect(textOf(noAddress.after.page)).toContain('GitHub (public) did not give an email address, which an account here needs.');

  const publicOne = gitHubUser({ publicEmail: true });
  const unconfirmed = await signInWith('github-public', publicOne);
  expect(unconfirmed.after.page?.status).toBe(403);
  expect(textOf(unconfirmed.after.page)).toContain('GitHub (public) has not confirmed your address');
});

test('GitHub’s refusals are sentences on the login page, never a 500: cancelled, a code it will not redeem (200 with an error), a secret it no longer takes', async () => {
  const cancelled = await signInWith('github', undefined);
  expect(cancelled.callback.searchParams.get('error')).toBe('access_denied');
  expect(cancelled.after.page?.status).toBe(400);
  expect(textOf(cancelled.after.page)).toContain('Signing in with GitHub was cancelled.');

  // A code GitHub does not know: the browser's answer altered on its way back (the state still right).
  github.signIn(gitHubUser());
  const browser = new UserAgent();
  const request = await codeFlowRequest(rp, { scope: 'openid email' });
  const { page } = await browser.follow(request.url.href, server.issuer);
  const sent = await browser.submit(page as Page, formOf(page as Page, '/federated/github'), {}, server.issuer);
  const answer = new URL((await fetch(sent.redirectedTo as URL, { redirect: 'manual' })).headers.get('location') ?? '');
  answer.searchParams.set('code', 'not-a-code-github-gave');
  const badCode = await browser.follow(answer.href, server.issuer);
  expect(badCode.page?.status).toBe(400);
  expect(textOf(badCode.page)).toContain('GitHub refused the sign-in (bad_verification_code: The code passed is incorrect or expired.)');

  // The app's secret was rotated at GitHub and not here.
  github.registerApp(APPS.github.clientId, 'rotated-at-github', `${server.issuer}/federation/github/callback`);
  try {
    const rotated = await signInWith('github', gitHubUser());
    expect(rotated.after.page?.status).toBe(400);
    expect(textOf(rotated.after.page)).toContain('GitHub refused the sign-in (incorrect_client_credentials');
  } finally {
    github.registerApp(APPS.github.clientId, APPS.github.secret, `${server.issuer}/federation/github/callback`);
  }
  const failures = (await audited('sign_in')).filter((event) => event.outcome === 'failure' && event.detail?.via === 'github');
  expect(failures.map((event) => event.detail?.reason)).toEqual(expect.arrayContaining(['upstream_error']));
});

test('an entry that requires an organization lets in its members only (their private memberships too, with read:org); another organization maps to a role', async () => {
  const member = gitHubUser();
  member.organizations = [
    { login: 'Acme', public: false },
    { login: 'acme-admins', public: false },
  ];
  const { after, request } = await signInWith('github-acme', member);
  const claims = await idTokenOf(after.redirectedTo, request);
  expect((await server.services.users.findById(claims.sub))?.roles).toEqual(['admin']);

  const outsider = gitHubUser();
  outsider.organizations = [{ login: 'globex', public: true }];
  const refused = await signInWith('github-acme', outsider);
  expect(refused.after.page?.status).toBe(403);
  expect(textOf(refused.after.page)).toContain('Your GitHub (Acme) account may not sign in here: its organizations is not one of those allowed.');
  expect(await server.services.users.findByEmail(outsider.emails[1]?.email ?? '')).toBeUndefined();
  const failures = (await audited('sign_in')).filter((event) => event.outcome === 'failure' && event.detail?.via === 'github-acme');
  expect(failures.map((event) => event.detail?.reason)).toEqual(['not_allowed']);
});

test('a plain OAuth 2.0 provider (oauth2): its endpoints and profile fields from the file, the secret by HTTP Basic', async () => {
  const person = gitHubUser({ publicEmail: true });
  const address = person.publicEmail as string;
  const mine = await server.services.users.create({ email: address, password: PASSWORD, roles: [], emailVerified: true });
  const { asked, after, browser, request } = await signInWith('forge', person);
  expect(asked.searchParams.get('scope')).toBe('read:user');
  expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
  const redemption = github.tokenRequests.at(-1);
  // HTTP Basic with each part form-encoded first (RFC 6749 §2.3.1): forge%2Dapp:forge%2Dapp%2Dsecret.
  const basic = Buffer.from(redemption?.authorization?.replace(/^Basic /, '') ?? '', 'base64').toString();
  expect(basic.split(':').map(decodeURIComponent)).toEqual([APPS.forge.clientId, APPS.forge.secret]);
  expect(redemption?.body.client_secret).toBeUndefined();
  // The profile says nothing of the address being confirmed: the account is linked with its password.
  expect(textOf(after.page)).toContain(`There is already an account here for ${address}`);
  const linked = await browser.submit(after.page as Page, formOf(after.page as Page, '/federated/link'), { password: PASSWORD }, server.issuer);
  expect(await idTokenOf(linked.redirectedTo, request)).toMatchObject({ sub: mine.id, amr: ['pwd', 'fed'] });
  expect(await server.services.linkedIdentities.listFor(mine.id)).toEqual([expect.objectContaining({ provider: 'forge', subject: String(person.id) })]);
  // The mapping, kept with the link while the password was asked for, then applied: the login, and no admin role.
  expect(await server.services.users.findById(mine.id)).toMatchObject({ roles: [], attributes: { forge_login: person.login } });

  // The person becomes a site admin there (the profile's `site_admin: true`): the role comes with the next sign-in.
  const admin = { ...person, siteAdmin: true };
  const next = await signInWith('forge', admin);
  expect(await idTokenOf(next.after.redirectedTo, next.request)).toMatchObject({ sub: mine.id, amr: ['fed'] });
  expect((await server.services.users.findById(mine.id))?.roles).toEqual(['forge-admin']);
});

test('authz identity-providers shows each kind; --check asks a plain OAuth 2.0 provider’s authorization endpoint', async () => {
  const listed = await runToEnd('src/cli.ts', ['identity-providers', '--check', '--json'], cleanEnvironment(server.env));
  expect(listed.code).toBe(0);
  const rows = JSON.parse(listed.stdout) as Record<string, unknown>[];
  expect(rows.map((row) => [row.id, row.type, row.issuer, row.discovery])).toEqual([
    ['github', 'github', github.url, 'ok'],
    ['github-public', 'github', github.url, 'ok'],
    ['github-acme', 'github', github.url, 'ok'],
    ['forge', 'oauth2', github.url, 'ok'],
  ]);

  // GitHub gone (this file's last test): each entry fails the check.
  await github.close();
  const down = await runToEnd('src/cli.ts', ['identity-providers', '--check', '--json'], cleanEnvironment(server.env));
  expect({ code: down.code, stderr: down.stderr }).toEqual({ code: 1, stderr: 'authz: identity-providers: github, github-public, github-acme, forge did not answer\n' });
});
