/**
 * Users, clients and APIs as stored: what reaches the database (never a plaintext password or secret), what is
 * refused, and how secrets roll over. Runs on every SQL store this run has (Postgres and PGlite).
 */
import { type ImportedUser, parseUserFile } from '../../src/accounts/user-import.js';
import { codeAt, decryptTotpSecret, newTotpSecret } from '../../src/accounts/totp.js';
import { TwoFactor } from '../../src/accounts/two-factor.js';
import { PasswordReusedError } from '../../src/accounts/password-history.js';
import { UserRepository } from '../../src/accounts/users.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { ApiRepository } from '../../src/apis/apis.js';
import { type ClientRecord, ClientRepository } from '../../src/clients/clients.js';
import { hashClientSecret } from '../../src/clients/secrets.js';
import { InputError, NotFoundError } from '../../src/errors.js';
import { DELETE_ACCOUNT_RECORDS, DELETE_CLIENT_RECORDS } from '../../src/store/grant-records.js';
import { type TestDatabase, createTestDatabase, sqlKinds } from '../support/environment.js';

const PEPPER = { kid: 'p1', secret: 'pepper-one-0123456789-0123456789-0123456789' };
const NEXT_PEPPER = { kid: 'p2', secret: 'pepper-two-0123456789-0123456789-0123456789' };

/** Every text value stored anywhere in the database, to look for leaked plaintext. */
async function everyStoredText(store: TestDatabase): Promise<string> {
  const tables = ['users', 'clients', 'client_secrets', 'apis', 'oidc_models'];
  const rows = await Promise.all(tables.map((table) => store.db(table).select('*')));
  return JSON.stringify(rows);
}

/** An oidc_models row as the adapters write one: a grant keeps its id as jti, the rest name their grant. */
function storedRecord(model: string, id: string, owner: { clientId?: string; accountId?: string }, grantId?: string) {
  return {
    model,
    id,
    payload: JSON.stringify({ ...owner, ...(grantId ? { grantId } : { jti: id }) }),
    grant_id: grantId ?? null,
    account_id: owner.accountId ?? null,
  };
}

/** Which of the rows whose id ends in one of `suffixes` are still stored. */
async function storedIds(store: TestDatabase, ...suffixes: string[]): Promise<string[]> {
  const query = store.db('oidc_models').where((where) => {
    for (const suffix of suffixes) where.orWhereLike('id', `%${suffix}`);
  });
  return query.orderBy('id').pluck('id');
}

describe.each(sqlKinds)('repositories on %s', (kind) => {
  let store: TestDatabase;
  let users: UserRepository;
  let clients: ClientRepository;
  let apis: ApiRepository;

  beforeAll(async () => {
    store = await createTestDatabase(kind);
    users = new UserRepository(store.db, { bcryptCost: 4 });
    clients = new ClientRepository(store.db, { peppers: [PEPPER] });
    apis = new ApiRepository(store.db, { defaultAccessTokenTtl: 600 });
  });
  afterAll(() => store.drop());

  describe('users', () => {
    test('stores a bcrypt hash, never the password, and finds the user by email in any case', async () => {
      const user = await users.create({ email: 'Ada@Example.TEST', password: 'analytical engine', roles: ['admin'] });
      expect(user.email).toBe('ada@example.test');
      expect(await everyStoredText(store)).not.toContain('analytical engine');
      const row = await store.db('users').where({ id: user.id }).first();
      expect(row.password_hash).toMatch(/^\$2[aby]\$04\$/);
      expect((await users.verifyPassword('ADA@example.test', 'analytical engine'))?.id).toBe(user.id);
    });

    test('a wrong password, an unknown email and a disabled user all fail alike', async () => {
      await users.create({ email: 'grace@example.test', password: 'compiler compiler' });
      expect(await users.verifyPassword('grace@example.test', 'wrong password')).toBeUndefined();
      expect(await users.verifyPassword('nobody@example.test', 'compiler compiler')).toBeUndefined();
      await users.disable('grace@example.test');
      expect(await users.verifyPassword('grace@example.test', 'compiler compiler')).toBeUndefined();
      await users.enable('grace@example.test');
      expect(await users.verifyPassword('grace@example.test', 'compiler compiler')).toBeDefined();
    });

    test('an import larger than the audit buffer writes every user_created event (10,001 users)', async () => {
      const audit = new AuditLog(store.db);
      const importing = new UserRepository(store.db, { bcryptCost: 4, audit, actor: 'cli' });
      const entries = Array.from({ length: 10_001 }, (_, index) => JSON.stringify({ email: `imported-${index}@example.test` })).join('\n');
      const { created } = await importing.importUsers(parseUserFile(entries));
      expect(created).toHaveLength(10_001);
      await audit.flush();
      const [row] = await store.db('audit_events').where({ type: 'user_created' }).whereRaw(`detail->>'imported' = 'true'`).count('* as count');
      expect(Number(row?.count)).toBe(10_001);
      expect(audit.stats.dropped).toBe(0);
      await audit.close();
    });

    test('a hash made at another cost is upgraded at the next sign-in', async () => {
      const user = await users.create({ email: 'linus@example.test', password: 'penguin penguin' });
      const stronger = new UserRepository(store.db, { bcryptCost: 5 });
      expect(await stronger.verifyPassword('linus@example.test', 'penguin penguin')).toBeDefined();
      const row = await store.db('users').where({ id: user.id }).first();
      expect(row.password_hash).toMatch(/^\$2[aby]\$05\$/);
    });

    test('refuses a duplicate email, a short, common or personal password and a password bcrypt would truncate', async () => {
      await expect(users.create({ email: 'ada@example.test', password: 'another one' })).rejects.toThrow(InputError);
      await expect(users.create({ email: 'short@example.test', password: 'short' })).rejects.toThrow(/at least 8/);
      await expect(users.create({ email: 'common@example.test', password: 'Password123' })).rejects.toThrow(/^password: that password is one of the first that are guessed/);
      await expect(users.create({ email: 'grace.hopper@example.test', name: 'Grace Hopper', password: 'gracehopper1' })).rejects.toThrow(/may not be your email address, your name/);
      const existing = await users.create({ email: 'weak@example.test', password: 'a long enough password' });
      await expect(users.setPassword(existing.id, 'letmein!')).rejects.toThrow(/one of the first that are guessed/);
      await expect(users.changePassword(existing.id, 'weak@example.test')).rejects.toThrow(/may not be your email address/);
      await expect(users.create({ email: 'long@example.test', password: 'x'.repeat(73) })).rejects.toThrow(/72 bytes/);
      await expect(users.create({ email: 'not an email', password: 'long enough' })).rejects.toThrow(/email/);
      expect(await users.findByEmail('short@example.test')).toBeUndefined();
    });

    test('PASSWORD_HISTORY: a new password may not be the current one nor one of those before it, and only as many hashes as that are kept', async () => {
      const remembering = new UserRepository(store.db, { bcryptCost: 4, passwordHistory: 3 });
      const user = await remembering.create({ email: 'history@example.test', password: 'first long password' });
      const remembered = () => store.db('password_history').where({ user_id: user.id }).orderBy('id').pluck('password_hash');
      await expect(remembering.changePassword(user.id, 'first long password')).rejects.toThrow(PasswordReusedError);
      await remembering.changePassword(user.id, 'second long password');
      await remembering.setPassword(user.id, 'third long password', { temporary: true });
      await expect(remembering.changePassword(user.id, 'first long password')).rejects.toThrow("password: that is one of the account's last 3 passwords (PASSWORD_HISTORY)");
      await expect(remembering.setPassword(user.id, 'second long password')).rejects.toThrow(PasswordReusedError);
      // A refusal changed nothing: the temporary password still works and is still to be replaced.
      expect(await remembering.verifyPassword(user.email, 'third long password')).toMatchObject({ passwordChangeRequired: true });
      // Only hashes, and two of them: the current one is the third.
      expect(await remembered()).toEqual([expect.stringMatching(/^\$2b\$04\$/), expect.stringMatching(/^\$2b\$04\$/)]);
      await remembering.changePassword(user.id, 'fourth long password');
      expect(await remembered()).toHaveLength(2);
      // Four back is allowed again.
      await remembering.changePassword(user.id, 'first long password');

      // A lower setting checks fewer and thins the list at the next change; 0 checks nothing.
      const currentOnly = new UserRepository(store.db, { bcryptCost: 4, passwordHistory: 1 });
      await expect(currentOnly.setPassword(user.id, 'first long password')).rejects.toThrow("password: that is the account's current password");
      await currentOnly.changePassword(user.id, 'fourth long password');
      expect(await remembered()).toEqual([]);
      await users.changePassword(user.id, 'fourth long password');

      // A reset link's account is the one checked, and a link for another account changes nothing.
      const redeemNothing = async () => undefined;
      await expect(remembering.resetPassword(user.id, redeemNothing, 'fourth long password')).rejects.toThrow(PasswordReusedError);
      expect(await remembering.resetPassword(user.id, redeemNothing, 'fifth long password')).toBeUndefined();

      // An import brings the old system's history along, newest first.
      const [imported] = parseUserFile(JSON.stringify({ email: 'moved@example.test', passwordHash: await users.passwords.hash('current long password'), passwordHistory: [await users.passwords.hash('earlier long password')] }));
      const { created: [moved] } = await remembering.importUsers([imported as ImportedUser]);
      await expect(remembering.changePassword(moved?.id as string, 'earlier long password')).rejects.toThrow(PasswordReusedError);
      await expect(remembering.changePassword(moved?.id as string, 'current long password')).rejects.toThrow(PasswordReusedError);

      // The history goes with the account.
      await remembering.changePassword(user.id, 'fifth long password');
      expect(await remembered()).toHaveLength(1);
      await remembering.remove(user.id);
      expect(await remembered()).toEqual([]);
    });

    test('revoking a user’s sessions deletes its grants, what was issued under them and its sessions, and nothing else', async () => {
      const user = await users.create({ email: 'leaving@example.test', password: 'correct horse battery staple' });
      const other = await users.create({ email: 'staying@example.test', password: 'correct horse battery staple' });
      await store.db('oidc_models').insert([
        storedRecord('Grant', 'g-leaving', { accountId: user.id, clientId: 'app' }),
        storedRecord('RefreshToken', 'rt-leaving', { accountId: user.id, clientId: 'app' }, 'g-leaving'),
        storedRecord('Session', 's-leaving', { accountId: user.id }),
        storedRecord('Grant', 'g-staying', { accountId: other.id, clientId: 'app' }),
        storedRecord('RefreshToken', 'rt-staying', { accountId: other.id, clientId: 'app' }, 'g-staying'),
      ]);
      await users.revokeSessions(user.id);
      expect(await storedIds(store, '-leaving', '-staying')).toEqual(['g-staying', 'rt-staying']);
    });

    test('an unknown user is a NotFoundError, and a non-uuid sub is simply not found', async () => {
      await expect(users.setPassword('ghost@example.test', 'long enough')).rejects.toThrow(NotFoundError);
      expect(await users.findById('not-a-uuid')).toBeUndefined();
    });
  });

  describe('two-step verification', () => {
    const p1 = { kid: 'p1', secret: 'one'.repeat(12) };
    const p2 = { kid: 'p2', secret: 'two'.repeat(12) };
    const twoFactorWith = (...peppers: { kid: string; secret: string }[]) => new TwoFactor(store.db, { peppers, requiredRoles: [] });
    const soon = (steps: number) => Date.now() + steps * 30_000;

    test('an app sealed under an older pepper is sealed again under the current one when used, so the old one can go', async () => {
      const user = await users.create({ email: 'reseal@example.test', password: 'a long enough password' });
      const secret = newTotpSecret();
      expect(await twoFactorWith(p1).enroll(user.id, secret, codeAt(secret, Date.now()))).toHaveLength(10);
      const sealed = async () => (await store.db('users').where({ id: user.id }).first('totp_secret')).totp_secret as string;
      expect(await sealed()).toMatch(/^v1\.p1\./);

      // p2 prepended: the next code passes and leaves the secret under p2.
      expect(await twoFactorWith(p2, p1).verify(user.id, codeAt(secret, soon(1)))).toBe('otp');
      expect(await sealed()).toMatch(/^v1\.p2\./);
      // p1 can be removed: the secret opens under p2 alone (its recovery codes stay keyed under p1, see README).
      expect(decryptTotpSecret(await sealed(), user.id, [p2])).toBe(secret);
      // A second use under the current pepper leaves it as it is.
      const resealed = await sealed();
      await twoFactorWith(p2).verify(user.id, codeAt(secret, soon(1)));
      expect(await sealed()).toBe(resealed);
    });

    test('after a reset the old app’s codes fail and nothing of it is left; a second reset says there was nothing to remove', async () => {
      const user = await users.create({ email: 'reset-race@example.test', password: 'a long enough password' });
      const secret = newTotpSecret();
      const twoFactor = twoFactorWith(p1);
      await twoFactor.enroll(user.id, secret, codeAt(secret, Date.now()));
      const { removedEnrollmentOf } = await users.resetTwoFactor(user.id);
      expect(removedEnrollmentOf).toBeInstanceOf(Date);
      expect(await twoFactor.verify(user.id, codeAt(secret, soon(1)))).toBeUndefined();
      const row = await store.db('users').where({ id: user.id }).first();
      expect(row).toMatchObject({ totp_secret: null, totp_enrolled_at: null, totp_last_step: null, totp_recovery_codes: null });
      expect((await users.resetTwoFactor(user.id)).removedEnrollmentOf).toBeNull();
    });

    test('a recovery code is spent by the first of two sign-ins racing with it', async () => {
      const user = await users.create({ email: 'recovery-race@example.test', password: 'a long enough password' });
      const secret = newTotpSecret();
      const twoFactor = twoFactorWith(p1);
      const codes = (await twoFactor.enroll(user.id, secret, codeAt(secret, Date.now()))) as string[];
      const outcomes = await Promise.all([twoFactor.verify(user.id, codes[0] as string), twoFactor.verify(user.id, codes[0] as string)]);
      expect(outcomes.filter((outcome) => outcome === 'recovery')).toHaveLength(1);
      expect(await twoFactor.recoveryCodesLeft(user.id)).toBe(9);
    });
  });

  describe('clients', () => {
    test('a web client gets a 256-bit secret, stored only as an HMAC under the current pepper', async () => {
      const { client, secret } = await clients.create({ type: 'web', name: 'Web', redirectUris: ['https://app.example.test/cb'] });
      expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes
      expect(await everyStoredText(store)).not.toContain(secret as string);
      const [stored] = await store.db('client_secrets').where({ client_id: client.clientId });
      expect(stored).toMatchObject({ pepper_kid: 'p1', hash: hashClientSecret(secret as string, PEPPER) });
      expect(client).toMatchObject({ grantTypes: ['authorization_code', 'refresh_token'], tokenEndpointAuthMethod: 'client_secret_basic' });
      expect(clients.verifySecret(client, secret as string)).toBe(true);
      expect(clients.verifySecret(client, `${secret}x`)).toBe(false);
    });

    test('an spa is public and gets no secret; a service gets client_credentials only', async () => {
      const spa = await clients.create({ type: 'spa', name: 'SPA', redirectUris: ['com.example.app:/callback', 'http://localhost:5173/cb'] });
      expect(spa.secret).toBeUndefined();
      expect(spa.client.tokenEndpointAuthMethod).toBe('none');
      // A native app is kept as one (RFC 8252: any loopback port, consent each time), under the spec's name.
      const native = await clients.create({ type: 'spa', name: 'CLI', redirectUris: ['http://127.0.0.1/callback'], nativeApp: true });
      expect(native.client.metadata).toEqual({ application_type: 'native' });
      const service = await clients.create({ type: 'service', name: 'Job', scope: 'reports:read', roles: ['admin'] });
      expect(service.client).toMatchObject({ grantTypes: ['client_credentials'], scope: 'reports:read', roles: ['admin'] });
    });

    test.each([
      [{ type: 'web', name: 'No redirect' }, /at least one redirect URI/],
      [{ type: 'web', name: 'Http', redirectUris: ['http://app.example.test/cb'] }, /must use https/],
      [{ type: 'web', name: 'Wild', redirectUris: ['https://*.example.test/cb'] }, /wildcard/],
      [{ type: 'web', name: 'Fragment', redirectUris: ['https://app.example.test/cb#x'] }, /fragment/],
      [{ type: 'web', name: 'Scheme', redirectUris: ['myapp:/cb'] }, /https/],
      [{ type: 'spa', name: 'Secret', redirectUris: ['https://a.example.test/cb'], tokenEndpointAuthMethod: 'client_secret_post' }, /public/],
      [{ type: 'service', name: 'Redirect', redirectUris: ['https://a.example.test/cb'] }, /no redirect URIs/],
      [{ type: 'web', name: 'Key', redirectUris: ['https://a.example.test/cb'], tokenEndpointAuthMethod: 'private_key_jwt' }, /jwks/],
      [{ type: 'robot', name: 'Robot' }, /web, spa, service or device/],
      [{ type: 'web', name: 'Native web', redirectUris: ['https://a.example.test/cb'], nativeApp: true }, /nativeApp: a native app is a public client/],
      // What URL would forgive but oidc-provider would never match: the client could not sign in.
      [{ type: 'web', name: 'Space', redirectUris: [' https://a.example.test/cb'] }, /spaces or control characters/],
      [{ type: 'web', name: 'Trailing', redirectUris: ['https://a.example.test/cb '] }, /spaces or control characters/],
      [{ type: 'web', name: 'Tab', redirectUris: ['https://a.example.test/c\tb'] }, /spaces or control characters/],
      [{ type: 'web', name: 'Newline', redirectUris: ['https://a.example.test/cb\n'] }, /spaces or control characters/],
      [{ type: 'web', name: 'Slashless', redirectUris: ['https:a.example.test/cb'] }, /must be written https:\/\/a\.example\.test/],
      [{ type: 'web', name: 'Capitals', postLogoutRedirectUris: ['HTTPS://A.example.test/'], redirectUris: ['https://a.example.test/cb'] }, /lower-case/],
      [{ type: 'service', name: 'Http keys', tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'http://keys.example.test/jwks' }, /jwksUri: .*must use https/],
      [{ type: 'service', name: 'Odd keys', tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'javascript:alert(1)' }, /jwksUri/],
      [{ type: 'service', name: 'Secret key', tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /kty must be RSA, EC or OKP/],
      [{ type: 'service', name: 'Private key', tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }] } }, /private member "d"/],
    ])('refuses %o', async (input, reason) => {
      const before = await store.db('clients').count({ n: '*' });
      await expect(clients.create(input as never)).rejects.toThrow(reason);
      expect(await store.db('clients').count({ n: '*' })).toEqual(before); // nothing half-written
    });

    test('production refuses plain-http redirect URIs for web apps but not for native apps on loopback', async () => {
      const production = new ClientRepository(store.db, { peppers: [PEPPER], production: true });
      await expect(production.create({ type: 'web', name: 'Dev', redirectUris: ['http://localhost:8080/cb'] })).rejects.toThrow(/https in production/);
      const native = await production.create({ type: 'spa', name: 'Native', redirectUris: ['http://127.0.0.1:51000/cb', 'com.example.app:/cb'] });
      expect(native.client.redirectUris).toHaveLength(2);
    });

    test('a key set URL may be plain http on loopback outside production only', async () => {
      const jwksUri = 'http://127.0.0.1:9/jwks';
      const dev = await clients.create({ type: 'service', name: 'Local keys', tokenEndpointAuthMethod: 'private_key_jwt', jwksUri });
      expect(dev.client.clientId).toBeTruthy();
      const production = new ClientRepository(store.db, { peppers: [PEPPER], production: true });
      await expect(production.create({ type: 'service', name: 'Local keys', tokenEndpointAuthMethod: 'private_key_jwt', jwksUri })).rejects.toThrow(
        /jwksUri: .*must use https in production/,
      );
    });

    test('update refuses the redirect URIs create refuses', async () => {
      const { client } = await clients.create({ type: 'web', name: 'Updated', redirectUris: ['https://a.example.test/cb'] });
      await expect(clients.update(client.clientId, { redirectUris: ['https://a.example.test/cb\t'] })).rejects.toThrow(/spaces or control characters/);
      await expect(clients.update(client.clientId, { redirectUris: ['https:a.example.test/cb'] })).rejects.toThrow(/must be written/);
      expect((await clients.require(client.clientId)).redirectUris).toEqual(['https://a.example.test/cb']);
    });

    test('rotating a secret keeps the old one working only for the overlap', async () => {
      const { client, secret: oldSecret } = await clients.create({ type: 'service', name: 'Rolling' });
      const now = new Date();
      const { secret: newSecret } = await clients.rotateSecret(client.clientId, 3600, now);
      const during = await clients.require(client.clientId);
      expect(clients.verifySecret(during, oldSecret as string)).toBe(true);
      expect(clients.verifySecret(during, newSecret)).toBe(true);
      const later = await clients.find(client.clientId, new Date(now.getTime() + 3601_000));
      expect(clients.verifySecret(later!, oldSecret as string)).toBe(false);
      expect(clients.verifySecret(later!, newSecret)).toBe(true);
      await expect(clients.rotateSecret('no-such-client', 0)).rejects.toThrow(NotFoundError);
    });

    test('a client is read whole: its fields as created and its unexpired secrets, newest first', async () => {
      const { client } = await clients.create({
        type: 'web',
        name: 'Whole',
        redirectUris: ['https://whole.example.test/cb'],
        postLogoutRedirectUris: ['https://whole.example.test/bye'],
        roles: ['reader'],
      });
      const now = new Date();
      await clients.rotateSecret(client.clientId, 3600, now);
      await clients.rotateSecret(client.clientId, 3600, now);
      const read = (await clients.find(client.clientId, now)) as ClientRecord;
      const { secrets, ...fields } = read;
      const { secrets: _created, ...createdFields } = client;
      expect(fields).toEqual({ ...createdFields, updatedAt: expect.any(Date) });
      expect(read.createdAt).toBeInstanceOf(Date);
      expect(read.disabledAt).toBeNull();

      const rows = await store.db('client_secrets').where({ client_id: client.clientId }).orderBy('created_at', 'desc');
      expect(secrets).toEqual(rows.map((row) => ({ pepperKid: row.pepper_kid, hash: row.hash, expiresAt: row.expires_at })));
      expect(secrets.map((secret) => secret.expiresAt?.getTime() ?? null)).toEqual([null, now.getTime() + 3_600_000, now.getTime() + 3_600_000]);
      // An hour later only the newest is left.
      const later = (await clients.find(client.clientId, new Date(now.getTime() + 3_600_000))) as ClientRecord;
      expect(later.secrets).toEqual([secrets[0]]);
    });

    test('a new pepper hashes new secrets while secrets hashed under the old one still verify', async () => {
      const { client, secret } = await clients.create({ type: 'service', name: 'Peppered' });
      const rotated = new ClientRepository(store.db, { peppers: [NEXT_PEPPER, PEPPER] });
      expect(rotated.verifySecret(await rotated.require(client.clientId), secret as string)).toBe(true);
      const { secret: newSecret } = await rotated.rotateSecret(client.clientId, 0);
      const rows = await store.db('client_secrets').where({ client_id: client.clientId }).orderBy('created_at', 'desc');
      expect(rows[0].pepper_kid).toBe('p2');
      expect(rotated.verifySecret(await rotated.require(client.clientId), newSecret)).toBe(true);
    });

    test('removing a client removes its secrets, its grants and what was issued under them, and nothing else', async () => {
      const { client } = await clients.create({ type: 'service', name: 'Doomed' });
      const { client: other } = await clients.create({ type: 'service', name: 'Spared' });
      await store.db('oidc_models').insert([
        storedRecord('Grant', 'g-doomed', { clientId: client.clientId }),
        storedRecord('RefreshToken', 'rt-doomed', { clientId: client.clientId }, 'g-doomed'),
        storedRecord('AccessToken', 'at-doomed', { clientId: client.clientId }, 'g-doomed'),
        storedRecord('ClientCredentials', 'cc-doomed', { clientId: client.clientId }),
        storedRecord('Grant', 'g-spared', { clientId: other.clientId }),
        storedRecord('RefreshToken', 'rt-spared', { clientId: other.clientId }, 'g-spared'),
      ]);
      await clients.remove(client.clientId);
      expect(await clients.find(client.clientId)).toBeUndefined();
      expect(await store.db('client_secrets').where({ client_id: client.clientId })).toHaveLength(0);
      expect(await storedIds(store, '-doomed', '-spared')).toEqual(['g-spared', 'rt-spared']);
      await expect(clients.remove(client.clientId)).rejects.toThrow(NotFoundError);
    });

    // Only PostgreSQL plans the statements (PGlite has no such check to run); with sequential scans off, they use
    // every index that applies.
    if (kind === 'postgres') {
      test.each([
        ['a client', DELETE_CLIENT_RECORDS, 'oidc_models_by_client'],
        ['a user', DELETE_ACCOUNT_RECORDS, 'oidc_models_by_account'],
      ])('%s’s records are found by index, not by reading the whole table', async (_owner, statement, index) => {
        const plan = await store.db.transaction(async (trx) => {
          await trx.raw('set local enable_seqscan = off');
          const explained = await trx.raw(`explain ${statement}`, ['some-owner']);
          return explained.rows.map((row: Record<string, string>) => row['QUERY PLAN']).join('\n');
        });
        expect(plan).toMatch(new RegExp(`using ${index}\\b`));
        expect(plan).toMatch(/using oidc_models_grant_id/);
        expect(plan).not.toMatch(/Seq Scan/);
      });
    }
  });

  describe('apis', () => {
    test('one default at a time, the default TTL when none is given, at most 24 hours', async () => {
      const first = await apis.create({ indicator: 'https://one.example.test', name: 'One', scopes: ['read'], isDefault: true });
      expect(first.accessTokenTtl).toBe(600);
      await apis.create({ indicator: 'https://two.example.test', name: 'Two', isDefault: true, accessTokenTtl: 3600 });
      expect((await apis.findDefault())?.indicator).toBe('https://two.example.test');
      expect((await apis.findByIndicator('https://one.example.test'))?.isDefault).toBe(false);
      await expect(apis.create({ indicator: 'https://three.example.test', name: 'Three', accessTokenTtl: 2 * 86_400 })).rejects.toThrow(/at most/);
    });

    test.each([
      [{ indicator: 'not a uri', name: 'X' }, /absolute URI/],
      [{ indicator: 'https://a.example.test/#f', name: 'X' }, /fragment/],
      [{ indicator: 'javascript:alert(1)', name: 'X' }, /absolute URI/],
      [{ indicator: 'urn:example:api', name: 'X' }, /absolute URI/],
      [{ indicator: 'ftp://a.example.test/', name: 'X' }, /must be an http or https URI/],
      [{ indicator: 'HTTPS://API.Example.test/Orders', name: 'X' }, /must be written https:\/\/api\.example\.test\/Orders \(lower-case/],
      [{ indicator: 'https://a.example.test:443/v1', name: 'X' }, /must be written https:\/\/a\.example\.test\/v1/],
      [{ indicator: 'https://a.example.test', name: 'X', scopes: ['openid'] }, /OpenID Connect scope/],
      [{ indicator: 'https://a.example.test', name: 'X', accessTokenFormat: 'paseto' }, /jwt or opaque/],
    ])('refuses %o', async (input, reason) => {
      await expect(apis.create(input as never)).rejects.toThrow(reason);
    });

    test('refuses a second API with the same indicator', async () => {
      await apis.create({ indicator: 'https://dup.example.test', name: 'Dup' });
      await expect(apis.create({ indicator: 'https://dup.example.test', name: 'Dup again' })).rejects.toThrow(/already exists/);
      await expect(apis.create({ indicator: 'https://DUP.example.test', name: 'Dup in capitals' })).rejects.toThrow(/must be written https:\/\/dup\.example\.test/);
    });
  });
});
