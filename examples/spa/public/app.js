// The example single-page app: authorization code + PKCE as a public client with oidc-client-ts, refresh tokens
// that rotate on every use, and an API called with the access token. Everything the server sends back is shown
// with textContent, never innerHTML.
const { UserManager } = globalThis.oidc;

const config = await (await fetch('/config.json')).json();
const manager = new UserManager({
  authority: config.issuer,
  client_id: config.clientId,
  redirect_uri: `${location.origin}/callback.html`,
  post_logout_redirect_uri: `${location.origin}/`,
  response_type: 'code',
  scope: `openid profile email roles offline_access ${config.apiScope}`,
  // offline_access (a refresh token) needs consent (OpenID Connect Core §11).
  prompt: 'consent',
  // RFC 8707: the access token is a JWT for this API. The userinfo endpoint refuses such a token, so the
  // profile comes from the ID token.
  extraQueryParams: { resource: config.apiResource },
  loadUserInfo: false,
  // Renew with the refresh token shortly before the access token expires.
  automaticSilentRenew: true,
});

const status = document.getElementById('status');
const claims = document.getElementById('claims');
const output = document.getElementById('output');

function show(text) {
  output.textContent = text;
}

async function render() {
  const user = await manager.getUser();
  const name = user?.profile.name ?? user?.profile.email ?? user?.profile.sub;
  status.textContent = user ? `Signed in as ${name}` : 'Signed out';
  document.getElementById('sign-in').hidden = Boolean(user);
  for (const id of ['profile', 'call-api', 'sign-out']) document.getElementById(id).hidden = !user;
}

function showProfile(user) {
  claims.replaceChildren();
  for (const [claim, value] of Object.entries(user.profile)) {
    const term = document.createElement('dt');
    term.textContent = claim;
    const description = document.createElement('dd');
    description.textContent = typeof value === 'string' ? value : JSON.stringify(value);
    claims.append(term, description);
  }
}

/** The API says `invalid_token` (RFC 6750) when the token expired or was revoked: renew once and retry. */
const refused = (response) => response.status === 401 && /invalid_token/.test(response.headers.get('WWW-Authenticate') ?? '');

async function callApi() {
  let user = await manager.getUser();
  if (!user) return show('Sign in first.');
  if (user.expired) user = await manager.signinSilent();
  const call = () => fetch(config.apiUrl, { headers: { Authorization: `Bearer ${user.access_token}` } });
  let response = await call();
  if (refused(response)) {
    user = await manager.signinSilent(); // the refresh token grant; the server rotates the refresh token
    response = await call();
  }
  show(`${response.status} ${JSON.stringify(await response.json(), null, 2)}`);
}

async function signOut() {
  // Revoke the refresh token, then end the session at the authorization server too.
  await manager.revokeTokens(['refresh_token']).catch(() => undefined);
  await manager.signoutRedirect();
}

function handle(action) {
  return () => action().catch((error) => show(`Error: ${error.message}`));
}

document.getElementById('sign-in').addEventListener('click', handle(() => manager.signinRedirect()));
document.getElementById('profile').addEventListener(
  'click',
  handle(async () => {
    const user = await manager.getUser();
    if (user) showProfile(user);
    else show('Sign in first.');
  }),
);
document.getElementById('call-api').addEventListener('click', handle(callApi));
document.getElementById('sign-out').addEventListener('click', handle(signOut));
manager.events.addSilentRenewError((error) => show(`Could not renew the session: ${error.message}`));

if (location.pathname === '/callback.html') {
  try {
    await manager.signinRedirectCallback();
  } catch (error) {
    show(`Sign-in failed: ${error.message}`);
  }
  // Drop the code and state from the address bar and history.
  history.replaceState(null, '', '/');
}
await render();
