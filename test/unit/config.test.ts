/**
 * The configuration: development fills in defaults; production lists every problem at once.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, ENVIRONMENT_VARIABLES, loadConfig } from '../../src/config.js';
import { certificateAuthority } from '../support/certificates.js';

const secret = 'x'.repeat(32);

/** The lines a refusal to start would print; none when the environment is accepted. */
function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
}

describe('configuration', () => {
  test('development needs nothing', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ production: false, issuer: 'http://localhost:3000', port: 3000, proxy: false });
    expect(config.database.url).toBeUndefined();
    expect(config.redis).toBeUndefined();
  });

  test('WEB_CONCURRENCY without DATABASE_URL runs one process, and says so instead of silently', () => {
    const embedded = loadConfig({ WEB_CONCURRENCY: '4' });
    expect(embedded.workers).toBe(1);
    expect(embedded.notices).toEqual(['WEB_CONCURRENCY=4 needs DATABASE_URL: the embedded database admits one process, so one runs']);
    const shared = loadConfig({ WEB_CONCURRENCY: '4', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' });
    expect(shared).toMatchObject({ workers: 4, notices: [] });
    expect(loadConfig({}).notices).toEqual([]);
  });

  test('an empty value counts as unset, as .env files and compose write one', () => {
    const config = loadConfig({ KEYS_PASSPHRASE: '', KEY_ROTATION_INTERVAL: '', REDIS_URL: '', PORT: '' });
    expect(config.keys.passphrase).toBeUndefined();
    expect(config.keys.rotationIntervalSeconds).toBeUndefined();
    expect(config.redis).toBeUndefined();
    expect(config.port).toBe(3000);
  });

  test('memory is trimmed every second unless turned off', () => {
    expect(loadConfig({}).memoryTrimIntervalSeconds).toBe(1);
    expect(loadConfig({ MEMORY_TRIM_INTERVAL: '0' }).memoryTrimIntervalSeconds).toBe(0);
    expect(loadConfig({ MEMORY_TRIM_INTERVAL: '1m' }).memoryTrimIntervalSeconds).toBe(60);
    expect(() => loadConfig({ MEMORY_TRIM_INTERVAL: 'often' })).toThrow(/MEMORY_TRIM_INTERVAL/);
  });

  test('a session ends 30 days after its sign-in unless SESSION_MAX_TTL says otherwise (0: never); remembering is asked', () => {
    expect(loadConfig({}).ttl.sessionMax).toBe(30 * 24 * 3600);
    expect(loadConfig({ SESSION_MAX_TTL: '0' }).ttl.sessionMax).toBe(0);
    expect(loadConfig({ SESSION_MAX_TTL: '10h' }).ttl.sessionMax).toBe(36_000);
    expect(() => loadConfig({ SESSION_MAX_TTL: '-1' })).toThrow(/SESSION_MAX_TTL/);
    expect(loadConfig({}).rememberMe).toBe('ask');
    expect(loadConfig({ LOGIN_REMEMBER_ME: 'never' }).rememberMe).toBe('never');
    expect(() => loadConfig({ LOGIN_REMEMBER_ME: 'sometimes' })).toThrow(/LOGIN_REMEMBER_ME must be ask, always or never/);
  });

  test('audit events are kept 90 days unless AUDIT_RETENTION says otherwise (0: forever)', () => {
    expect(loadConfig({}).auditRetentionSeconds).toBe(90 * 24 * 3600);
    expect(loadConfig({ AUDIT_RETENTION: '0' }).auditRetentionSeconds).toBe(0);
    expect(loadConfig({ AUDIT_RETENTION: '400d' }).auditRetentionSeconds).toBe(400 * 24 * 3600);
    expect(() => loadConfig({ AUDIT_RETENTION: 'a while' })).toThrow(/AUDIT_RETENTION/);
  });

  test('access-token records are kept for 30 s, 10,000 per worker, unless turned off; nonsense is refused', () => {
    expect(loadConfig({}).tokenCache).toEqual({ ttlMs: 30_000, maxEntries: 10_000 });
    expect(loadConfig({ TOKEN_CACHE_TTL_MS: '0', TOKEN_CACHE_MAX_ENTRIES: '0' }).tokenCache).toEqual({ ttlMs: 0, maxEntries: 0 });
    expect(() => loadConfig({ TOKEN_CACHE_TTL_MS: '-1' })).toThrow(/TOKEN_CACHE_TTL_MS/);
    expect(() => loadConfig({ TOKEN_CACHE_MAX_ENTRIES: 'many' })).toThrow(/TOKEN_CACHE_MAX_ENTRIES/);
  });

  test('a device code lives 10 minutes and is polled every 5 s unless set otherwise; nonsense is refused', () => {
    expect(loadConfig({})).toMatchObject({ ttl: { deviceCode: 600 }, devicePollIntervalSeconds: 5 });
    expect(loadConfig({ DEVICE_CODE_TTL: '15m', DEVICE_POLL_INTERVAL: '10s' })).toMatchObject({ ttl: { deviceCode: 900 }, devicePollIntervalSeconds: 10 });
    expect(() => loadConfig({ DEVICE_POLL_INTERVAL: '0' })).toThrow(/DEVICE_POLL_INTERVAL/);
    expect(() => loadConfig({ DEVICE_CODE_TTL: '30s' })).toThrow(/DEVICE_CODE_TTL/);
    expect(() => loadConfig({ DEVICE_CODE_TTL: '2d' })).toThrow(/DEVICE_CODE_TTL/);
  });

  test('prepared statements are on unless turned off', () => {
    expect(loadConfig({}).database.preparedStatements).toBe(true);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).database.preparedStatements).toBe(false);
    expect(() => loadConfig({ DATABASE_PREPARED_STATEMENTS: 'sometimes' })).toThrow(/DATABASE_PREPARED_STATEMENTS/);
    expect(loadConfig({}).database.queryTimeoutSeconds).toBe(10);
    expect(loadConfig({ DATABASE_QUERY_TIMEOUT: '0' }).database.queryTimeoutSeconds).toBe(0);
    expect(loadConfig({ DATABASE_QUERY_TIMEOUT: '1m' }).database.queryTimeoutSeconds).toBe(60);
    expect(() => loadConfig({ DATABASE_QUERY_TIMEOUT: 'forever' })).toThrow(/DATABASE_QUERY_TIMEOUT/);
  });

  test('signatures are made in line when every core has its worker, on the thread pool when cores are spare', () => {
    const cores = availableParallelism();
    const withWorkers = (workers: number, choice?: string) =>
      loadConfig({ DATABASE_URL: 'postgres://db.example.test/authz', WEB_CONCURRENCY: String(workers), ...(choice ? { SIGNING_THREAD: choice } : {}) }).keys
        .signInline;
    expect(withWorkers(cores)).toBe(true);
    expect(withWorkers(cores + 1)).toBe(true);
    if (cores > 1) expect(withWorkers(cores - 1)).toBe(false);
    expect(withWorkers(1, 'event-loop')).toBe(true);
    expect(withWorkers(cores, 'pool')).toBe(false);
    expect(() => loadConfig({ SIGNING_THREAD: 'gpu' })).toThrow(/SIGNING_THREAD/);
  });

  test('a grant never expires before its refresh tokens', () => {
    const config = loadConfig({ REFRESH_TOKEN_TTL: '99999999', GRANT_TTL: '100' });
    expect(config.ttl.grant).toBe(99999999);
  });

  test('production lists every missing piece', () => {
    try {
      loadConfig({ NODE_ENV: 'production', KEYS_DIR: '/nonexistent' });
      throw new Error('should have refused');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      for (const expected of ['ISSUER', 'DATABASE_URL', 'REDIS_URL', 'COOKIE_SECRETS', 'CLIENT_SECRET_PEPPERS', 'no signing key']) {
        expect(problems).toContain(expected);
      }
    }
  });

  test('production starts with everything in place', async () => {
    const keysDir = await mkdtemp(path.join(tmpdir(), 'authz-config-'));
    try {
      await writeFile(path.join(keysDir, 'k1.pem'), 'checked when loaded');
      const config = loadConfig({
        NODE_ENV: 'production',
        ISSUER: 'https://id.example.com/',
        DATABASE_URL: 'postgres://db/authz',
        REDIS_URL: 'redis://cache',
        COOKIE_SECRETS: `${secret}a,${secret}b`,
        CLIENT_SECRET_PEPPERS: `p2:${secret},p1:${secret}`,
        KEYS_DIR: keysDir,
        PROXY: 'true',
      });
      expect(config.issuer).toBe('https://id.example.com');
      expect(config.cookieSecrets).toHaveLength(2);
      expect(config.clientSecretPeppers.map((pepper) => pepper.kid)).toEqual(['p2', 'p1']);
      expect(config.proxy).toBe(true);
      // Production sends no mail unless told where to: nothing is written to the log in its place.
      expect(config.mail).toEqual({ transport: 'off', smtpUrl: undefined, from: 'no-reply@id.example.com', linkTtlSeconds: 1800, confirmationRequired: false, templatesDir: undefined });
    } finally {
      await rm(keysDir, { recursive: true, force: true });
    }
  });

  test('mail goes to SMTP_URL, or to the log in development; a URL of another scheme or a bad From is refused', () => {
    expect(loadConfig({}).mail).toEqual({ transport: 'log', smtpUrl: undefined, from: 'no-reply@localhost', linkTtlSeconds: 1800, confirmationRequired: false, templatesDir: undefined });
    const smtp = loadConfig({ SMTP_URL: 'smtps://u:p@smtp.example.com:465', MAIL_FROM: ' Accounts <accounts@example.com> ', EMAIL_LINK_TTL: '2h' });
    expect(smtp.mail).toEqual({ transport: 'smtp', smtpUrl: 'smtps://u:p@smtp.example.com:465', from: 'Accounts <accounts@example.com>', linkTtlSeconds: 7200, confirmationRequired: false, templatesDir: undefined });
    expect(problemsOf({ SMTP_URL: 'https://smtp.example.com', MAIL_FROM: 'Accounts', EMAIL_LINK_TTL: '10s' })).toEqual([
      'SMTP_URL must look like smtps://user:password@smtp.example.com:465 or smtp://smtp.example.com:587',
      'MAIL_FROM must be an address such as no-reply@example.com, or Name <no-reply@example.com>',
      'EMAIL_LINK_TTL: Too small: expected number to be >=60',
    ]);
  });

  test('production refuses EMAIL_CONFIRMATION_REQUIRED without SMTP_URL: nobody could sign in without the mail', () => {
    const problems = problemsOf({ NODE_ENV: 'production', EMAIL_CONFIRMATION_REQUIRED: 'true', KEYS_DIR: '/nonexistent' });
    expect(problems).toContain('EMAIL_CONFIRMATION_REQUIRED needs SMTP_URL: nobody could sign in without the confirmation mail');
    expect(problemsOf({ NODE_ENV: 'production', EMAIL_CONFIRMATION_REQUIRED: 'true', SMTP_URL: 'smtp://relay:587', KEYS_DIR: '/nonexistent' })).not.toContain(
      'EMAIL_CONFIRMATION_REQUIRED needs SMTP_URL: nobody could sign in without the confirmation mail',
    );
    expect(loadConfig({ EMAIL_CONFIRMATION_REQUIRED: 'true' }).mail).toMatchObject({ transport: 'log', confirmationRequired: true });
  });

  test('terms of service: TERMS_URL and TERMS_VERSION together, or neither', () => {
    expect(loadConfig({}).terms).toBeUndefined();
    expect(loadConfig({ TERMS_URL: 'https://shop.example/terms', TERMS_VERSION: '2026-12-01' }).terms).toEqual({ url: 'https://shop.example/terms', version: '2026-12-01' });
    expect(problemsOf({ TERMS_URL: 'https://shop.example/terms' })).toEqual([
      'TERMS_URL and TERMS_VERSION go together: the address people read, and the version they accept (a new one asks again)',
    ]);
    expect(problemsOf({ TERMS_URL: 'terms.html', TERMS_VERSION: '1' })[0]).toMatch(/^TERMS_URL: must be the http\(s\) address/);
    expect(problemsOf({ TERMS_URL: 'https://shop.example/terms', TERMS_VERSION: 'version one' })[0]).toMatch(/^TERMS_VERSION: must be 1 to 64 letters/);
  });

  test('new passwords: 8 characters unless PASSWORD_MIN_LENGTH says more (8–64); no history unless PASSWORD_HISTORY (0–24); no expiry unless PASSWORD_MAX_AGE; no breach lookup unless PASSWORD_BREACH_CHECK; PASSWORD_BLOCKLIST_FILE must be readable', async () => {
    expect(loadConfig({}).passwords).toEqual({ minLength: 8, blocklist: [], history: 0, historyDays: 0, maxAgeSeconds: 0 });
    expect(loadConfig({ PASSWORD_HISTORY_DAYS: '365' }).passwords.historyDays).toBe(365);
    expect(problemsOf({ PASSWORD_HISTORY_DAYS: '4000' })[0]).toMatch(/^PASSWORD_HISTORY_DAYS: /);
    expect(loadConfig({ PASSWORD_MAX_AGE: '90d' }).passwords.maxAgeSeconds).toBe(90 * 86_400);
    expect(problemsOf({ PASSWORD_MAX_AGE: '12h' })[0]).toMatch(/^PASSWORD_MAX_AGE: must be 0 \(never\) or 1 day to 10 years/);
    expect(loadConfig({ PASSWORD_MIN_LENGTH: '15' }).passwords.minLength).toBe(15);
    expect(problemsOf({ PASSWORD_MIN_LENGTH: '6' })[0]).toMatch(/^PASSWORD_MIN_LENGTH: /);
    expect(loadConfig({ PASSWORD_HISTORY: '5' }).passwords.history).toBe(5);
    expect(problemsOf({ PASSWORD_HISTORY: '25' })[0]).toMatch(/^PASSWORD_HISTORY: /);
    expect(problemsOf({ PASSWORD_HISTORY: 'three' })[0]).toMatch(/^PASSWORD_HISTORY: /);
    expect(loadConfig({ PASSWORD_BREACH_CHECK: 'true' }).passwords.breachCheck).toEqual({ rangeApi: 'https://api.pwnedpasswords.com/range/' });
    expect(loadConfig({ PASSWORD_BREACH_CHECK: 'true', PASSWORD_BREACH_API: 'https://pwned.internal/range/' }).passwords.breachCheck).toEqual({ rangeApi: 'https://pwned.internal/range/' });
    expect(problemsOf({ PASSWORD_BREACH_API: 'pwned.internal' })[0]).toMatch(/^PASSWORD_BREACH_API: must be an http\(s\) URL/);
    expect(problemsOf({ PASSWORD_BLOCKLIST_FILE: '/nonexistent/words.txt' })).toEqual(['PASSWORD_BLOCKLIST_FILE: cannot read /nonexistent/words.txt (ENOENT)']);
    const dir = await mkdtemp(path.join(tmpdir(), 'blocklist-'));
    await writeFile(path.join(dir, 'words.txt'), 'acmewidget\n');
    expect(loadConfig({ PASSWORD_BLOCKLIST_FILE: path.join(dir, 'words.txt') }).passwords.blocklist).toEqual(['acmewidget']);
  });

  test('mutual TLS: MTLS_CERTIFICATE_HEADER only behind a proxy (PROXY), MTLS_TRUSTED_CA_FILE a readable bundle of authorities', async () => {
    expect(loadConfig({}).mutualTls).toBeUndefined();
    expect(loadConfig({ PROXY: 'true', MTLS_CERTIFICATE_HEADER: 'X-SSL-Client-Cert' }).mutualTls).toEqual({ header: 'x-ssl-client-cert', trustedAuthorities: [] });
    expect(problemsOf({ MTLS_CERTIFICATE_HEADER: 'X-SSL-Client-Cert' })).toEqual([
      'MTLS_CERTIFICATE_HEADER needs PROXY=true: the certificate comes from the TLS-terminating proxy in front of the server, and without one any client could send the header itself',
    ]);
    expect(problemsOf({ PROXY: 'true', MTLS_CERTIFICATE_HEADER: 'X-SSL Client: Cert' })[0]).toMatch(/^MTLS_CERTIFICATE_HEADER: must be an HTTP header name/);
    expect(problemsOf({ MTLS_TRUSTED_CA_FILE: '/etc/ca.pem' })).toEqual(['MTLS_TRUSTED_CA_FILE needs MTLS_CERTIFICATE_HEADER: the header in which your proxy passes on the client certificate']);
    const withFile = (file: string) => ({ PROXY: 'true', MTLS_CERTIFICATE_HEADER: 'X-SSL-Client-Cert', MTLS_TRUSTED_CA_FILE: file });
    expect(problemsOf(withFile('/nonexistent/ca.pem'))).toEqual(['MTLS_TRUSTED_CA_FILE: /nonexistent/ca.pem: ENOENT']);
    const dir = await mkdtemp(path.join(tmpdir(), 'mtls-'));
    const authority = await certificateAuthority('CN=Clients CA');
    const leaf = await authority.issue('CN=billing');
    await writeFile(path.join(dir, 'ca.pem'), `# the clients' authority\n${authority.certificate.pem}\n${leaf.pem}`);
    await writeFile(path.join(dir, 'leaf.pem'), leaf.pem);
    expect(loadConfig(withFile(path.join(dir, 'ca.pem'))).mutualTls?.trustedAuthorities.map((certificate) => certificate.subject)).toEqual(['CN=Clients CA']);
    expect(problemsOf(withFile(path.join(dir, 'leaf.pem')))).toEqual([`MTLS_TRUSTED_CA_FILE: ${path.join(dir, 'leaf.pem')}: it holds no CA certificate (PEM, "BEGIN CERTIFICATE", with basicConstraints CA:TRUE)`]);
  });

  test('MTLS_CRL_FILE goes with MTLS_TRUSTED_CA_FILE, whose authorities’ lists it holds', () => {
    expect(problemsOf({ PROXY: 'true', MTLS_CERTIFICATE_HEADER: 'X-SSL-Client-Cert', MTLS_CRL_FILE: '/etc/clients.crl' })).toEqual([
      'MTLS_CRL_FILE needs MTLS_TRUSTED_CA_FILE: the lists are those of the authorities it trusts',
    ]);
    expect(problemsOf({ MTLS_CRL_FILE: '/etc/clients.crl' })).toEqual(['MTLS_CRL_FILE needs MTLS_CERTIFICATE_HEADER: the header in which your proxy passes on the client certificate']);
  });

  test('mutual TLS on a host of its own: MTLS_ENDPOINTS_URL, a URL that is not the issuer, https in production', () => {
    const mtls = { PROXY: 'true', MTLS_CERTIFICATE_HEADER: 'X-SSL-Client-Cert' };
    expect(loadConfig({ ...mtls, MTLS_ENDPOINTS_URL: 'https://mtls.id.example.com/' }).mutualTls?.endpointsUrl).toBe('https://mtls.id.example.com');
    expect(loadConfig(mtls).mutualTls?.endpointsUrl).toBeUndefined();
    expect(problemsOf({ MTLS_ENDPOINTS_URL: 'https://mtls.id.example.com' })).toEqual(['MTLS_ENDPOINTS_URL needs MTLS_CERTIFICATE_HEADER: the header in which your proxy passes on the client certificate']);
    expect(problemsOf({ MTLS_ENDPOINTS_URL: 'https://mtls.id.example.com', MTLS_TRUSTED_CA_FILE: '/etc/ca.pem' })).toEqual([
      'MTLS_TRUSTED_CA_FILE and MTLS_ENDPOINTS_URL need MTLS_CERTIFICATE_HEADER: the header in which your proxy passes on the client certificate',
    ]);
    for (const url of ['mtls.id.example.com', 'ftp://mtls.id.example.com', 'https://mtls.id.example.com/?a=b', 'https://user:pw@mtls.id.example.com']) {
      expect(problemsOf({ ...mtls, MTLS_ENDPOINTS_URL: url })[0]).toMatch(/^MTLS_ENDPOINTS_URL: must be the http\(s\) URL of the host at which your proxy asks clients for certificates/);
    }
    expect(problemsOf({ ...mtls, ISSUER: 'https://id.example.com', MTLS_ENDPOINTS_URL: 'https://id.example.com/' })).toEqual([
      "MTLS_ENDPOINTS_URL is the issuer itself (https://id.example.com): give the URL of the proxy's other host, or leave it unset when the issuer's host asks for certificates",
    ]);
    const production = { NODE_ENV: 'production', ISSUER: 'https://id.example.com', ...mtls, MTLS_ENDPOINTS_URL: 'http://mtls.id.example.com' };
    expect(problemsOf(production)).toContain('MTLS_ENDPOINTS_URL must be https in production (got http://mtls.id.example.com): clients send their certificates there');
  });

  test('webhooks: WEBHOOK_URL with a Standard Webhooks WEBHOOK_SECRET (or two), event types or beginnings of them, https in production', () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    expect(loadConfig({}).webhook).toBeUndefined();
    expect(loadConfig({ WEBHOOK_URL: 'https://app.example/hooks', WEBHOOK_SECRET: `${secret}, ${secret}`, WEBHOOK_EVENTS: 'user_*, client_created' }).webhook).toEqual({
      url: 'https://app.example/hooks',
      keys: [Buffer.alloc(32, 7), Buffer.alloc(32, 7)],
      events: ['user_*', 'client_created'],
    });
    expect(problemsOf({ WEBHOOK_URL: 'https://app.example/hooks' })[0]).toMatch(/^WEBHOOK_URL needs WEBHOOK_SECRET, .*echo "whsec_\$\(openssl rand -base64 32\)"/);
    expect(problemsOf({ WEBHOOK_URL: 'https://app.example/hooks', WEBHOOK_SECRET: 'hunter2' })[0]).toMatch(/^WEBHOOK_SECRET: each secret must be whsec_ and the base64 of 24 to 64 random bytes/);
    expect(problemsOf({ WEBHOOK_URL: 'https://app.example/hooks', WEBHOOK_SECRET: `whsec_${Buffer.alloc(8).toString('base64')}` })[0]).toMatch(/^WEBHOOK_SECRET: /);
    expect(problemsOf({ WEBHOOK_URL: 'https://app.example/hooks', WEBHOOK_SECRET: secret, WEBHOOK_EVENTS: 'Users' })).toEqual([
      'WEBHOOK_EVENTS: Users is no audit event type (such as user_created), nor a beginning of one with * (user_*)',
    ]);
    expect(problemsOf({ WEBHOOK_SECRET: secret })).toEqual(['WEBHOOK_SECRET and WEBHOOK_EVENTS need WEBHOOK_URL: where the events are sent']);
    expect(problemsOf({ WEBHOOK_URL: 'app.example/hooks', WEBHOOK_SECRET: secret })[0]).toMatch(/^WEBHOOK_URL: must be the http\(s\) address/);
    expect(problemsOf({ NODE_ENV: 'production', WEBHOOK_URL: 'http://app.example/hooks', WEBHOOK_SECRET: secret })).toContain(
      'WEBHOOK_URL must be https in production (got http://app.example/hooks): events name your users',
    );
  });

  test('CLIENT_REGISTRATION_TRUSTED_HOSTS lists host names, * for any under one', () => {
    expect(loadConfig({}).clientRegistrationTrustedHosts).toEqual([]);
    expect(loadConfig({ CLIENT_REGISTRATION_TRUSTED_HOSTS: 'App.Example.com, *.partner.example.com' }).clientRegistrationTrustedHosts).toEqual(['app.example.com', '*.partner.example.com']);
    expect(problemsOf({ CLIENT_REGISTRATION_TRUSTED_HOSTS: 'https://app.example.com/' })[0]).toMatch(/^CLIENT_REGISTRATION_TRUSTED_HOSTS must list host names/);
  });

  test('MAIL_TEMPLATES_DIR must be a folder', () => {
    expect(problemsOf({ MAIL_TEMPLATES_DIR: '/nonexistent/templates' })).toEqual(['MAIL_TEMPLATES_DIR: there is no folder at /nonexistent/templates']);
    expect(loadConfig({ MAIL_TEMPLATES_DIR: tmpdir() }).mail.templatesDir).toBe(tmpdir());
  });

  test('THEME_DIR must be a folder whose templates compile and whose assets are served types; its mail/ is the mail templates', async () => {
    expect(problemsOf({ THEME_DIR: '/nonexistent/theme' })).toEqual(['THEME_DIR: there is no folder at /nonexistent/theme']);
    const theme = await mkdtemp(path.join(tmpdir(), 'theme-'));
    try {
      await mkdir(path.join(theme, 'assets'));
      await writeFile(path.join(theme, 'theme-header.njk'), '<header>{{ site.name }}</header>');
      await writeFile(path.join(theme, 'assets', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
      expect(loadConfig({ THEME_DIR: theme })).toMatchObject({ themeDir: theme, mail: { templatesDir: undefined } });

      await mkdir(path.join(theme, 'mail'));
      expect(loadConfig({ THEME_DIR: theme }).mail.templatesDir).toBe(path.join(theme, 'mail'));
      expect(loadConfig({ THEME_DIR: theme, MAIL_TEMPLATES_DIR: tmpdir() }).mail.templatesDir).toBe(tmpdir());

      // Each problem names its file, all at once: a broken template, a type not served, a name a URL would mangle.
      await writeFile(path.join(theme, 'login.njk'), '{% extends "layout.njk" %}{% block content %}{% if %}{% endblock %}');
      await writeFile(path.join(theme, 'assets', 'notes.txt'), 'x');
      await writeFile(path.join(theme, 'assets', 'my logo.png'), 'x');
      const problems = problemsOf({ THEME_DIR: theme });
      expect(problems).toHaveLength(3);
      expect(problems).toContain('THEME_DIR/login.njk: [Line 1, Column 52] unexpected token: %}');
      expect(problems).toContain("THEME_DIR/assets/my logo.png: name it with letters, digits, '.', '_' and '-' only");
      expect(problems).toContain('THEME_DIR/assets/notes.txt: not a type the pages serve (.css .js .svg .png .jpg .jpeg .webp .gif .ico .woff2 .woff)');
    } finally {
      await rm(theme, { recursive: true, force: true });
    }
  });

  test('IDENTITY_PROVIDERS_FILE lists providers, and each problem is named by its entry', async () => {
    expect(problemsOf({ IDENTITY_PROVIDERS_FILE: '/nonexistent/providers.json' })).toEqual(['IDENTITY_PROVIDERS_FILE (/nonexistent/providers.json): there is no such file']);
    const dir = await mkdtemp(path.join(tmpdir(), 'providers-'));
    try {
      const file = path.join(dir, 'providers.json');
      const google = { id: 'google', name: 'Google', issuer: 'https://accounts.google.com', clientId: 'abc', clientSecretEnv: 'GOOGLE_SECRET' };
      await writeFile(file, JSON.stringify([google]));
      expect(loadConfig({ IDENTITY_PROVIDERS_FILE: file, GOOGLE_SECRET: 's3cret' }).identityProviders).toEqual([
        {
          id: 'google',
          type: 'oidc',
          name: 'Google',
          issuer: 'https://accounts.google.com',
          clientId: 'abc',
          clientSecret: 's3cret',
          tokenEndpointAuthMethod: 'client_secret_basic',
          logout: false,
          scope: 'openid email profile',
          createAccounts: true,
          trustEmail: false,
          authorizationParameters: {},
          requirements: [],
          mappers: { roles: [], attributes: {}, syncMode: 'force' },
        },
      ]);
      expect(problemsOf({ IDENTITY_PROVIDERS_FILE: file })).toEqual(['IDENTITY_PROVIDERS_FILE [0] (google): GOOGLE_SECRET (its clientSecretEnv) is not set']);
      expect(loadConfig({}).identityProviders).toEqual([]);

      await writeFile(file, '[{"id": "google",');
      expect(problemsOf({ IDENTITY_PROVIDERS_FILE: file })[0]).toMatch(/^IDENTITY_PROVIDERS_FILE \(.*providers\.json\): .*JSON/);
      const local = { id: 'local', name: 'Local', issuer: 'http://127.0.0.1:4000', clientId: 'x', clientSecret: 'y' };
      await writeFile(file, JSON.stringify([{ ...google, clientSecretEnv: undefined, clientSecret: 'y', scope: 'email' }, { ...local, id: 'Bad Id' }, { ...local, id: 'link', extra: 1 }, { ...local, id: 'params', authorizationParameters: { prompt: 'select_account', state: 'mine' } }]));
      const problems = problemsOf({ IDENTITY_PROVIDERS_FILE: file });
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [0] (google).scope: must include openid');
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [1] (Bad Id).id: must be 1–32 lower-case letters, digits and dashes');
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [2] (link).id: link is taken: choose another id');
      expect(problems.some((problem) => problem.startsWith('IDENTITY_PROVIDERS_FILE [2] (link)') && problem.includes('extra'))).toBe(true);
      expect(problems).toContain(
        'IDENTITY_PROVIDERS_FILE [3] (params).authorizationParameters: authorizationParameters cannot set response_type, client_id, redirect_uri, scope, state, nonce, code_challenge, code_challenge_method, request, request_uri, response_mode',
      );
      // http is for a provider on this machine or network, outside production; an id once.
      await writeFile(file, JSON.stringify([local, local]));
      expect(problemsOf({ IDENTITY_PROVIDERS_FILE: file })).toEqual(['IDENTITY_PROVIDERS_FILE [1] (local): the id local is used twice']);
      await writeFile(file, JSON.stringify([local]));
      const production = problemsOf({ NODE_ENV: 'production', IDENTITY_PROVIDERS_FILE: file });
      expect(production).toEqual(['IDENTITY_PROVIDERS_FILE [0] (local): its URLs must be https in production (got http://127.0.0.1:4000)']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('IDENTITY_PROVIDERS_FILE takes GitHub (github.com or an Enterprise Server) and plain OAuth 2.0 providers, with what each must name', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'providers-'));
    try {
      const file = path.join(dir, 'providers.json');
      const github = { id: 'github', type: 'github', name: 'GitHub', clientId: 'Ov23li', clientSecretEnv: 'GITHUB_SECRET' };
      const enterprise = { ...github, id: 'ghes', githubUrl: 'https://github.corp.example/', clientSecretEnv: undefined, clientSecret: 's' };
      const oauth = {
        id: 'forge',
        type: 'oauth2',
        name: 'Forge',
        authorizationEndpoint: 'https://forge.example/oauth/authorize',
        tokenEndpoint: 'https://forge.example/oauth/token',
        userinfoEndpoint: 'https://api.forge.example/v1/me',
        scope: 'profile',
        clientId: 'app',
        claims: { subject: 'data.id' },
      };
      await writeFile(file, JSON.stringify([github, enterprise, oauth]));
      const [gitHub, gitHubEnterprise, forge] = loadConfig({ IDENTITY_PROVIDERS_FILE: file, GITHUB_SECRET: 'gh' }).identityProviders;
      expect(gitHub).toMatchObject({
        type: 'github',
        issuer: 'https://github.com',
        scope: 'read:user user:email',
        clientSecret: 'gh',
        tokenEndpointAuthMethod: 'client_secret_post',
        endpoints: {
          authorization: 'https://github.com/login/oauth/authorize',
          token: 'https://github.com/login/oauth/access_token',
          profile: 'https://api.github.com/user',
          emails: 'https://api.github.com/user/emails',
        },
      });
      expect(gitHubEnterprise?.endpoints).toEqual({
        authorization: 'https://github.corp.example/login/oauth/authorize',
        token: 'https://github.corp.example/login/oauth/access_token',
        profile: 'https://github.corp.example/api/v3/user',
        emails: 'https://github.corp.example/api/v3/user/emails',
        organizations: 'https://github.corp.example/api/v3/user/orgs',
      });
      // A public client at a plain OAuth 2.0 provider (PKCE alone); the fields not named keep OpenID Connect's names.
      expect(forge).toMatchObject({
        type: 'oauth2',
        issuer: 'https://forge.example',
        clientSecret: undefined,
        tokenEndpointAuthMethod: 'client_secret_basic',
        endpoints: { authorization: 'https://forge.example/oauth/authorize', token: 'https://forge.example/oauth/token', profile: 'https://api.forge.example/v1/me' },
        profileFields: { subject: 'data.id', email: 'email', emailVerified: 'email_verified', name: 'name' },
      });

      const { authorizationEndpoint: _, scope: __, ...incomplete } = oauth;
      await writeFile(file, JSON.stringify([{ ...github, clientSecretEnv: undefined }]));
      expect(problemsOf({ IDENTITY_PROVIDERS_FILE: file })).toEqual(['IDENTITY_PROVIDERS_FILE [0] (github): GitHub needs clientSecret or clientSecretEnv']);
      await writeFile(file, JSON.stringify([github, { ...incomplete, id: 'incomplete' }, { ...github, id: 'other', type: 'saml' }, { ...oauth, id: 'bad-field', claims: { subject: 'data..id' } }]));
      const problems = problemsOf({ IDENTITY_PROVIDERS_FILE: file });
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [1] (incomplete).authorizationEndpoint: must be the provider’s authorization endpoint URL');
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [1] (incomplete).scope: must be given: the scope values to ask for, separated by spaces');
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [2] (other).type: type must be oidc, github or oauth2');
      expect(problems).toContain('IDENTITY_PROVIDERS_FILE [3] (bad-field).claims.subject: must be a field name, dotted for a nested field');

      // Mappers: a role's claim and value come together; attribute names as users' attributes have them.
      await writeFile(
        file,
        JSON.stringify([
          { ...oauth, roles: [{ role: 'admin', claim: 'groups' }, { role: 'bad role!' }], attributes: { '1st': 'x', ok: 'a..b' }, syncMode: 'sometimes', require: [{ claim: 'hd', values: [] }] },
        ]),
      );
      const mapperProblems = problemsOf({ IDENTITY_PROVIDERS_FILE: file });
      expect(mapperProblems).toEqual(
        expect.arrayContaining([
          'IDENTITY_PROVIDERS_FILE [0] (forge).roles.0: give claim and value together, or neither for a role everyone signing in this way has',
          'IDENTITY_PROVIDERS_FILE [0] (forge).roles.1.role: a role is 1–64 letters, digits, ":", "_", "." or "-"',
          'IDENTITY_PROVIDERS_FILE [0] (forge).attributes.1st: an attribute name is a letter, then up to 63 letters, digits, "_", "." or "-"',
          'IDENTITY_PROVIDERS_FILE [0] (forge).attributes.ok: must be a field name, dotted for a nested field',
          'IDENTITY_PROVIDERS_FILE [0] (forge).require.0.values: Too small: expected array to have >=1 items',
        ]),
      );
      expect(mapperProblems.some((problem) => problem.startsWith('IDENTITY_PROVIDERS_FILE [0] (forge).syncMode'))).toBe(true);

      // Production takes https for every URL an entry names.
      await writeFile(file, JSON.stringify([{ ...oauth, userinfoEndpoint: 'http://10.0.0.5/me' }]));
      expect(problemsOf({ NODE_ENV: 'production', IDENTITY_PROVIDERS_FILE: file })).toContain(
        'IDENTITY_PROVIDERS_FILE [0] (forge): its URLs must be https in production (got http://10.0.0.5/me)',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('USER_CLAIMS names attributes, never a claim with a meaning of its own', () => {
    expect(loadConfig({ USER_CLAIMS: 'tenant_id, departments' }).userClaims).toEqual(['tenant_id', 'departments']);
    expect(loadConfig({}).userClaims).toEqual([]);
    // A scope of their own: released only to apps granted it.
    expect(loadConfig({ USER_CLAIMS: 'tenant_id, hr:employee_id, hr:cost_center' })).toMatchObject({
      userClaims: ['tenant_id', 'employee_id', 'cost_center'],
      claimScopes: { hr: ['employee_id', 'cost_center'] },
    });
    expect(problemsOf({ USER_CLAIMS: 'email:x,Hr:y,hr:sub,a,hr:a' })).toEqual([
      'USER_CLAIMS: the scope "email" has a meaning of its own: give the attribute a scope of its own, or none (profile)',
      'USER_CLAIMS: "Hr" is not a scope name (a lower-case letter, then letters, digits, "_", "." or "-")',
      'USER_CLAIMS: "sub" is a claim with a meaning of its own, which an attribute cannot stand in for',
      'USER_CLAIMS: "a" is listed twice',
    ]);
    expect(problemsOf({ USER_CLAIMS: 'tenant_id,sub,1st' })).toEqual([
      'USER_CLAIMS: "sub" is a claim with a meaning of its own, which an attribute cannot stand in for',
      'USER_CLAIMS: "1st" is not an attribute name (a letter, then letters, digits, "_", "." or "-")',
    ]);
  });

  test('apps that registered themselves are kept unless CLIENT_REGISTRATION_UNUSED_TTL says for how long unused (1 day to 10 years)', () => {
    expect(loadConfig({}).clientRegistrationUnusedTtlSeconds).toBe(0);
    expect(loadConfig({ CLIENT_REGISTRATION_UNUSED_TTL: '30d' }).clientRegistrationUnusedTtlSeconds).toBe(30 * 86_400);
    for (const value of ['1h', '11y', 'soon']) expect(problemsOf({ CLIENT_REGISTRATION_UNUSED_TTL: value })[0]).toMatch(/^CLIENT_REGISTRATION_UNUSED_TTL/);
  });

  test('registration is off unless opened; its roles are a list; another value is refused', () => {
    expect(loadConfig({}).registration).toEqual({ mode: 'off', roles: [] });
    expect(loadConfig({ REGISTRATION: 'open', REGISTRATION_ROLES: 'member, reader' }).registration).toEqual({ mode: 'open', roles: ['member', 'reader'] });
    expect(problemsOf({ REGISTRATION: 'yes' })).toEqual(['REGISTRATION must be off or open']);
  });

  test('a number that is not plain digits is refused, naming the variable and the value typed', () => {
    expect(problemsOf({ PORT: 'abc' })).toEqual(['PORT: "abc" is not a whole number']);
    // A blank value would otherwise listen on a random port, and these would be read as 10 and 80.
    expect(problemsOf({ PORT: ' ' })).toEqual(['PORT: " " is not a whole number']);
    expect(problemsOf({ BCRYPT_COST: '1e1' })).toEqual(['BCRYPT_COST: "1e1" is not a whole number']);
    expect(problemsOf({ METRICS_PORT: '0x50' })).toEqual(['METRICS_PORT: "0x50" is not a whole number']);
    expect(loadConfig({ PORT: ' 3001 ' }).port).toBe(3001);
  });

  test('a DATABASE_URL that is not a postgres:// URL is refused before any connection is tried', () => {
    for (const url of ['localhost:5432/authz', 'mysql://authz@db/authz', 'db.example.com']) {
      expect(() => loadConfig({ DATABASE_URL: url })).toThrow(/^configuration is not usable:\n {2}- DATABASE_URL must look like postgres:\/\/user:password@host:5432\/database/);
    }
    expect(loadConfig({ DATABASE_URL: 'postgresql://authz:p%40ss@db.example.com:5432/authz' }).database.url).toBe(
      'postgresql://authz:p%40ss@db.example.com:5432/authz',
    );
  });

  test('a message that already names its variable does not name it twice', () => {
    expect(() => loadConfig({ ISSUER: 'id.example.com' })).toThrow(/\n {2}- ISSUER must be this server's address/);
  });

  test('ISSUER is an http(s) origin: a path (whose discovery address would answer 404), a query or no scheme is refused', () => {
    for (const issuer of ['localhost:3000', 'https://id.example.com/idp', 'https://id.example.com/?tenant=1', 'https://id.example.com#x', 'ftp://id.example.com', 'https://admin:pw@id.example.com']) {
      expect(problemsOf({ ISSUER: issuer })).toEqual([
        "ISSUER must be this server's address with no path, such as https://id.example.com (endpoints are served at the root of the host)",
      ]);
    }
    expect(loadConfig({ ISSUER: 'https://id.example.com/' }).issuer).toBe('https://id.example.com');
    expect(loadConfig({ ISSUER: 'http://localhost:3000' }).issuer).toBe('http://localhost:3000');
  });

  test('METRICS_PORT equal to PORT is refused: the second listener would find the port taken by the first', () => {
    expect(problemsOf({ PORT: '8080', METRICS_PORT: '8080' })).toEqual([
      'METRICS_PORT is the same as PORT (8080): give /metrics a port of its own, or unset METRICS_PORT to serve it on PORT',
    ]);
    expect(loadConfig({ PORT: '8080', METRICS_PORT: '9464' }).metricsPort).toBe(9464);
  });

  test('METRICS_TOKEN is long enough not to be guessed', () => {
    expect(problemsOf({ METRICS_TOKEN: 'short' })).toEqual(['METRICS_TOKEN must be at least 32 characters (e.g. openssl rand -base64 32)']);
    expect(loadConfig({ METRICS_TOKEN: 'm'.repeat(32) }).metricsToken).toBe('m'.repeat(32));
  });

  test('.env.example names every variable the server reads, and no other', async () => {
    const example = await readFile(path.join(import.meta.dirname, '../../.env.example'), 'utf8');
    const named = [...example.matchAll(/^#?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]);
    expect(new Set(named)).toEqual(new Set(ENVIRONMENT_VARIABLES));
  });

  test('.env.example copied as it is (as docker-compose.yml suggests) is refused in production until the secrets are filled in', async () => {
    const example = await readFile(path.join(import.meta.dirname, '../../.env.example'), 'utf8');
    const dotEnv = Object.fromEntries([...example.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((match) => [match[1], match[2]]));
    const keysDir = await mkdtemp(path.join(tmpdir(), 'authz-config-'));
    try {
      await writeFile(path.join(keysDir, 'k1.pem'), 'checked when loaded');
      // What docker-compose.yml sets itself, beside the .env file.
      const composed = { ...dotEnv, NODE_ENV: 'production', DATABASE_URL: 'postgres://authz:authz@postgres:5432/authz', REDIS_URL: 'redis://redis:6379', KEYS_DIR: keysDir };
      const problems = problemsOf(composed);
      expect(problems.filter((problem) => problem.startsWith('COOKIE_SECRETS'))).toHaveLength(1);
      expect(problems.filter((problem) => problem.startsWith('CLIENT_SECRET_PEPPERS'))).toHaveLength(1);
    } finally {
      await rm(keysDir, { recursive: true, force: true });
    }
  });

  test('as docker-compose.yml passes them, an empty COOKIE_SECRETS is fine in production when keys/ holds a *.cookie-secret', async () => {
    const keysDir = await mkdtemp(path.join(tmpdir(), 'authz-config-'));
    try {
      await writeFile(path.join(keysDir, 'k1.pem'), 'checked when loaded');
      await writeFile(path.join(keysDir, '20261206T000000Z.cookie-secret'), 'x'.repeat(43));
      const env = {
        NODE_ENV: 'production',
        ISSUER: 'https://id.example.com',
        DATABASE_URL: 'postgres://authz:authz@postgres:5432/authz',
        REDIS_URL: 'redis://redis:6379',
        KEYS_DIR: keysDir,
        CLIENT_SECRET_PEPPERS: `p1:${'y'.repeat(43)}`,
      };
      expect(problemsOf({ ...env, COOKIE_SECRETS: '' })).toEqual([]);
      await rm(path.join(keysDir, '20261206T000000Z.cookie-secret'));
      expect(problemsOf({ ...env, COOKIE_SECRETS: '' })).toEqual([expect.stringMatching(/^COOKIE_SECRETS is not set and keys\/ holds no \*\.cookie-secret/)]);
    } finally {
      await rm(keysDir, { recursive: true, force: true });
    }
  });

  test('short secrets are refused in production', () => {
    expect(() =>
      loadConfig({ NODE_ENV: 'production', ISSUER: 'https://id.example.com', COOKIE_SECRETS: 'short', CLIENT_SECRET_PEPPERS: 'p:short' }),
    ).toThrow(/at least 32 characters/);
  });
});
