/**
 * The `authz` command line as an operator uses it: a real child process on the repository's Node, against the
 * same database a server then uses. Bad arguments get a usage message and exit 2; refused input gets one line
 * and exit 1; a store that cannot be reached gets one line and exit 75; nothing prints a stack trace.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newChallenge } from '../../src/accounts/passkeys.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { postgresUrl, uniqueName } from '../support/environment.js';
import { linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { cleanEnvironment, freePort, runToEnd } from '../support/process.js';
import { PASSWORD, createUser, createWebClient, discover, signInAndRedeem } from '../support/relying-party.js';
import { selfSignedCertificate } from '../support/certificates.js';
import { startTestServer } from '../support/server.js';
import { SoftwarePasskey } from '../support/software-passkey.js';

const STACK_TRACE = /\n\s+at .+:\d+/;
const PEPPERS = 'c1:cli-test-pepper-0123456789-0123456789';

let scratch: string;
let env: NodeJS.ProcessEnv;
let schema: string | undefined;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'authz-cli-'));
  schema = postgresUrl ? uniqueName('cli') : undefined;
  env = cleanEnvironment({
    DATABASE_URL: postgresUrl,
    DATABASE_SCHEMA: schema,
    DATA_DIR: path.join(scratch, 'data'),
    KEYS_DIR: path.join(scratch, 'keys'),
    CLIENT_SECRET_PEPPERS: PEPPERS,
    BCRYPT_COST: '4',
  });
});
afterAll(async () => {
  if (schema) {
    const { openDatabase, closeDatabase } = await import('../../src/store/database.js');
    const db = await openDatabase({ url: postgresUrl, embeddedDir: ':memory:' });
    await db.raw('drop schema if exists ?? cascade', [schema]);
    await closeDatabase(db);
  }
  await rm(scratch, { recursive: true, force: true });
});

const authz = (args: string[], input?: string) => runToEnd('src/cli.ts', args, env, input);

/** A user as `users list --json` shows it. */
async function listedUser(email: string, environment = env) {
  const users = JSON.parse((await runToEnd('src/cli.ts', ['users', 'list', '--json'], environment)).stdout) as { email: string }[];
  return users.find((user) => user.email === email);
}

function expectRefusal(result: { code: number | null; stdout: string; stderr: string }, code: number, reason: RegExp) {
  expect(result.code).toBe(code);
  expect(result.stderr).toMatch(reason);
  expect(result.stderr).not.toMatch(STACK_TRACE);
}

describe('authz CLI', () => {
  test('migrate brings the schema up to date and says so the second time', async () => {
    const first = await authz(['migrate']);
    expect(first.code).toBe(0);
    const second = await authz(['migrate']);
    expect(second).toMatchObject({ code: 0, stdout: 'the schema is up to date\n' });
  });

  test('users add, list, set-password (from stdin), set-roles, disable', async () => {
    const added = await authz(['users', 'add', '--email', 'Ops@Example.test', '--name', 'Ops', '--roles', 'admin,editor']);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/created user ops@example\.test/);
    expect(added.stdout).toMatch(/password: \S{20}/);

    const list = await authz(['users', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ email: 'ops@example.test', roles: ['admin', 'editor'], status: 'active', emailVerified: false, disabledAt: null }),
    ]);
    const plain = JSON.parse((await authz(['users', 'add', '--email', 'plain@example.test', '--json'])).stdout);
    expect(plain).toMatchObject({ email: 'plain@example.test', roles: [], emailVerified: false, disabledAt: null });

    expect((await authz(['users', 'set-password', '--email', 'ops@example.test', '--password-stdin'], 'a long new password\n')).code).toBe(0);
    expect((await authz(['users', 'set-roles', 'ops@example.test', 'reader'])).stdout).toMatch(/roles: reader/);
    expect((await authz(['users', 'disable', 'ops@example.test'])).stdout).toMatch(/disabled/);

    // A temporary password (Keycloak's "Temporary"): the user chooses their own at the next sign-in; the flag can be set and lifted.
    const temporary = await authz(['users', 'set-password', '--email', 'plain@example.test', '--password-stdin', '--temporary'], 'given over the phone\n');
    expect(temporary).toMatchObject({ code: 0, stdout: 'password changed for plain@example.test; they choose their own at their next sign-in\n' });
    expect(await listedUser('plain@example.test')).toMatchObject({ passwordChangeRequired: true });
    expect((await authz(['users', 'no-require-password-change', 'plain@example.test'])).stdout).toBe('plain@example.test is no longer asked to choose a new password\n');
    expect(await listedUser('plain@example.test')).toMatchObject({ passwordChangeRequired: false });
    expect((await authz(['users', 'require-password-change', 'plain@example.test'])).code).toBe(0);
    expect(await listedUser('plain@example.test')).toMatchObject({ passwordChangeRequired: true });
    const given = await authz(['users', 'add', '--email', 'given@example.test', '--password-stdin', '--temporary', '--json'], 'given over the phone\n');
    expect(JSON.parse(given.stdout)).toMatchObject({ email: 'given@example.test', passwordChangeRequired: true });
    expectRefusal(await authz(['users', 'add', '--email', 'invited@example.test', '--invite', '--temporary']), 1, /--invite lets them choose their own password already/);

    expectRefusal(await authz(['users', 'add', '--email', 'ops@example.test']), 1, /^authz: a user with the email ops@example\.test already exists\n$/);
    expectRefusal(await authz(['users', 'set-password', '--email', 'ops@example.test', '--password', 'short']), 1, /at least 8 characters/);
    expectRefusal(await authz(['users', 'set-password', '--email', 'ops@example.test', '--password', 'qwerty123']), 1, /that password is one of the first that are guessed/);
    expectRefusal(await authz(['users', 'disable', 'ghost@example.test']), 1, /no user ghost@example\.test/);

    // Removing a password (Keycloak's credential deletion) says when nothing else signs the user in.
    expect((await authz(['users', 'remove-password', 'given@example.test'])).stdout).toBe(
      'removed the password of given@example.test; their sessions stay (authz users revoke-sessions given@example.test ends them)\n' +
        'they have no passkey nor other sign-in: they sign in again only after "Forgot your password?"\n',
    );
    expect(await listedUser('given@example.test')).toMatchObject({ passwordChangedAt: null, passwordChangeRequired: false });

    // Attributes: one value is text, more are a list; unset removes one.
    expect((await authz(['users', 'set-attribute', 'plain@example.test', 'tenant_id', 'acme'])).stdout).toBe('plain@example.test: tenant_id = "acme"\n');
    expect((await authz(['users', 'set-attribute', 'plain@example.test', 'departments', 'sales', 'support'])).stdout).toBe('plain@example.test: departments = ["sales","support"]\n');
    expect(await listedUser('plain@example.test')).toMatchObject({ attributes: { tenant_id: 'acme', departments: ['sales', 'support'] } });
    expect((await authz(['users', 'unset-attribute', 'plain@example.test', 'departments'])).stdout).toBe('plain@example.test: departments removed\n');
    expect(await listedUser('plain@example.test')).toMatchObject({ attributes: { tenant_id: 'acme' } });
    expectRefusal(await authz(['users', 'set-attribute', 'plain@example.test', 'has space', 'x']), 1, /an attribute name is a letter/);

    // Deleting (the right to erasure): gone from the list, and a second time there is no such user.
    expect((await authz(['users', 'delete', 'given@example.test'])).stdout).toMatch(/^deleted user given@example\.test \(sub [0-9a-f-]{36}\)\n$/);
    expect(await listedUser('given@example.test')).toBeUndefined();
    expectRefusal(await authz(['users', 'delete', 'given@example.test']), 1, /no user given@example\.test/);
  }, 120_000); // some 20 CLI processes, 2–3 s each: near the default 60 s on a busy machine

  test('users require-totp and no-require-totp: the flag, the 2-step column and --json, audited as by the cli; unknown users refused', async () => {
    const email = 'totp@example.test';
    const added = JSON.parse((await authz(['users', 'add', '--email', email, '--json'])).stdout) as { id: string };
    expect(added).toMatchObject({ twoStep: 'off', totpRequired: false, totpEnrolledAt: null });

    expect(await authz(['users', 'require-totp', email])).toMatchObject({
      code: 0,
      stdout: `${email} must set up two-step verification (an authenticator app) at their next sign-in\n`,
    });
    expect(await listedUser(email)).toMatchObject({ twoStep: 'required', totpRequired: true, totpEnrolledAt: null });
    const [header, ...rows] = (await authz(['users', 'list'])).stdout.trim().split('\n');
    expect(header).toMatch(/\bstatus +2-step +created$/);
    expect(rows.find((row) => row.includes(email))).toMatch(/ active +required +\d{4}-/);

    expect((await authz(['users', 'no-require-totp', email])).code).toBe(0);
    expect(await listedUser(email)).toMatchObject({ twoStep: 'off', totpRequired: false });

    expectRefusal(await authz(['users', 'require-totp', 'ghost@example.test']), 1, /^authz: no user ghost@example\.test\n$/);
    expectRefusal(await authz(['users', 'no-require-totp']), 2, /error: missing required argument 'email'/);
    const events = JSON.parse((await authz(['audit', 'search', '--user', added.id, '--type', 'user_updated', '--json'])).stdout) as { detail: object }[];
    expect(events.map((event) => event.detail)).toEqual([
      expect.objectContaining({ by: 'cli', fields: ['totpRequired'] }),
      expect.objectContaining({ by: 'cli', fields: ['totpRequired'] }),
    ]);
  });

  test('users no-require-totp and reset-totp say what the next sign-in asks: password alone, or set-up required by a role in TOTP_REQUIRED_ROLES', async () => {
    const email = 'role-totp@example.test';
    expect((await authz(['users', 'add', '--email', email, '--roles', 'admin'])).code).toBe(0);
    expect((await authz(['users', 'no-require-totp', email])).stdout).toBe(
      `${email} is no longer asked for two-step verification\nthey sign in with their password alone (two-step verification is not required of them)\n`,
    );
    // The role requires it without the flag; a reset with no app set up has nothing to remove, and says so.
    const byRole = { ...env, TOTP_REQUIRED_ROLES: 'admin' };
    expect(await listedUser(email, byRole)).toMatchObject({ twoStep: 'required', totpRequired: false });
    expect(await runToEnd('src/cli.ts', ['users', 'reset-totp', email], byRole)).toMatchObject({
      code: 0,
      stdout: `${email} had no authenticator app set up; nothing to remove\nthey must set up an authenticator app at their next sign-in (required: role admin in TOTP_REQUIRED_ROLES)\n`,
    });
    expectRefusal(await authz(['users', 'reset-totp', 'ghost@example.test']), 1, /^authz: no user ghost@example\.test\n$/);
  });

  test('users reset-totp after a real enrollment: the app and recovery codes stop working, it is to be set up again, audited as by the cli', async () => {
    if (!schema) return; // the enrollment is written straight into the test's schema: Postgres only (always so under CI)
    // Not through a test server: closing one drops the schema it was given, the CLI's own here.
    const { openDatabase, closeDatabase } = await import('../../src/store/database.js');
    const { TwoFactor } = await import('../../src/accounts/two-factor.js');
    const db = await openDatabase({ url: postgresUrl, schema, embeddedDir: ':memory:' });
    try {
      const [kid = '', pepper = ''] = PEPPERS.split(':');
      const twoFactor = new TwoFactor(db, { peppers: [{ kid, secret: pepper }], requiredRoles: [] });
      const email = 'lost-phone@example.test';
      const listed = () => listedUser(email);
      const added = JSON.parse((await authz(['users', 'add', '--email', email, '--json'])).stdout) as { id: string };
      expect((await authz(['users', 'require-totp', email])).code).toBe(0);
      // The user sets up an app, as the set-up page does after its first code.
      const secret = newTotpSecret();
      const recoveryCodes = await twoFactor.enroll(added.id, secret, codeAt(secret, Date.now()));
      if (!Array.isArray(recoveryCodes)) throw new Error(`not enrolled: ${recoveryCodes}`);
      const enrolled = await listed();
      expect(enrolled).toMatchObject({ twoStep: 'on', totpRequired: true, totpEnrolledAt: expect.any(String) });
      const setUp = (enrolled as unknown as { totpEnrolledAt: string }).totpEnrolledAt.replace(/\.\d{3}Z$/, 'Z');
      expect((await authz(['users', 'require-totp', email])).stdout).toBe(
        `${email} must use two-step verification; they use an authenticator app already (set up ${setUp})\n`,
      );

      const reset = await authz(['users', 'reset-totp', email]);
      expect({ code: reset.code, stderr: reset.stderr }).toEqual({ code: 0, stderr: '' });
      expect(reset.stdout).toBe(
        [
          `removed the authenticator app and recovery codes of ${email} (set up ${setUp})`,
          'they must set up an authenticator app at their next sign-in (required: asked with users require-totp)',
          `their sessions stay; to sign them out everywhere: authz users revoke-sessions ${email}`,
          '',
        ].join('\n'),
      );
      expect(await listed()).toMatchObject({ twoStep: 'required', totpEnrolledAt: null });
      expect(await twoFactor.verify(added.id, codeAt(secret, Date.now() + 30_000))).toBeUndefined();
      expect(await twoFactor.verify(added.id, recoveryCodes[0] as string)).toBeUndefined();
      const [lastReset] = JSON.parse((await authz(['audit', 'search', '--user', added.id, '--type', 'user_totp_reset', '--limit', '1', '--json'])).stdout);
      expect(lastReset.detail).toEqual({ by: 'cli', wasEnrolled: true });
    } finally {
      await closeDatabase(db);
    }
  });

  test('users list prints every user, past a thousand; audit tail --json reads oldest first, as the table does', async () => {
    if (!schema) return; // rows are written straight into the test's schema: Postgres only (always so under CI)
    const { openDatabase, closeDatabase } = await import('../../src/store/database.js');
    const db = await openDatabase({ url: postgresUrl, schema, embeddedDir: ':memory:' });
    try {
      const { randomUUID } = await import('node:crypto');
      const rows = Array.from({ length: 1001 }, (_, index) => ({ id: randomUUID(), email: `many-${index}@example.test` }));
      await db('users').insert(rows);
      const listed = JSON.parse((await authz(['users', 'list', '--json'])).stdout) as { email: string }[];
      expect(listed.filter((user) => user.email.startsWith('many-'))).toHaveLength(1001);
      await db('users').where('email', 'like', 'many-%').delete();
    } finally {
      await closeDatabase(db);
    }
    const table = (await authz(['audit', 'tail', '-n', '5'])).stdout.trim().split('\n').slice(1);
    const json = JSON.parse((await authz(['audit', 'tail', '-n', '5', '--json'])).stdout) as { id: string; type: string }[];
    expect(json).toHaveLength(table.length);
    const ids = json.map((event) => BigInt(event.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1))); // oldest first
    expect(json.map((event) => event.type)).toEqual(table.map((line) => line.split(/\s+/)[1]));
  });

  test('users import: bcrypt hashes and ids are kept (the old password signs in, sub unchanged), every bad line is named, all or nothing', async () => {
    const { randomUUID } = await import('node:crypto');
    const bcrypt = (await import('bcrypt')).default;
    const keptId = randomUUID();
    // PHP writes bcrypt as $2y$; another cost than the server's is redone at the first sign-in.
    const oldHash = (await bcrypt.hash(PASSWORD, 5)).replace(/^\$2b\$/, '$2y$');
    const file = path.join(scratch, 'users.jsonl');
    const lines = [
      { email: 'moved-1@example.test', name: 'Moved One', roles: ['editor'], emailVerified: true, id: keptId, passwordHash: oldHash },
      { email: 'Moved-2@Example.test' },
    ];
    await writeFile(file, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n\n`);

    const imported = await authz(['users', 'import', file]);
    expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
    expect(imported.stdout).toBe('imported 2 users\n1 came without a password hash: set one with authz users set-password before they can sign in\n');
    const listed = JSON.parse((await authz(['users', 'list', '--json'])).stdout) as { id: string; email: string; roles: string[]; emailVerified: boolean }[];
    expect(listed.find((user) => user.email === 'moved-1@example.test')).toMatchObject({ id: keptId, roles: ['editor'], emailVerified: true });
    expect(listed.some((user) => user.email === 'moved-2@example.test')).toBe(true);

    // Again: refused whole, unless told to leave out who is there.
    expectRefusal(await authz(['users', 'import', file]), 1, /^authz: 2 of the file's users exist already \(.*moved-1@example\.test.*\); nothing was imported \(--skip-existing leaves them out\)\n$/);
    const skipping = await authz(['users', 'import', '--skip-existing', '-'], JSON.stringify([{ email: 'moved-1@example.test' }, { email: 'moved-3@example.test' }]));
    expect(skipping).toMatchObject({ code: 0, stdout: 'imported 1 user; skipped 1 whose email exists already\n1 came without a password hash: set one with authz users set-password before they can sign in\n' });

    const bad = [
      '{"email":"fine@example.test"}',
      '{"email":"not-an-email"}',
      '{"email":"hashed@example.test","passwordHash":"plain text"}',
      '{"email":"twice@example.test"}',
      '{"email":"TWICE@example.test"}',
      '{"emial":"typo@example.test"}',
      'not json',
    ].join('\n');
    // JSON that cannot be read stops the check at once; the rest is then named entry by entry.
    expectRefusal(await authz(['users', 'import', '-'], bad), 1, /^authz: line 7 is not JSON \(.+\)\n$/);
    const refusedJson = await authz(['users', 'import', '-'], bad.split('\n').slice(0, 6).join('\n'));
    expectRefusal(refusedJson, 1, /^authz: line 2: email: email must be an email address; line 3: passwordHash: not a bcrypt hash, nor a PBKDF2 or Argon2 .*; line 5: the email twice@example\.test is also at line 4; line 6: .*emial.*\n$/);
    expect((await authz(['users', 'list'])).stdout).not.toContain('fine@example.test');
    expectRefusal(await authz(['users', 'import', path.join(scratch, 'no-such-file.jsonl')]), 1, /^authz: cannot read .*no-such-file\.jsonl: ENOENT\n$/);

    // A Keycloak export: PBKDF2 (before Keycloak 25) and Argon2id (since), as Keycloak writes its credentials.
    const { argon2Sync, pbkdf2Sync } = await import('node:crypto');
    const salt = Buffer.from('keycloak salt 16');
    const credential = (value: Buffer, credentialData: object) => ({
      type: 'password',
      secretData: JSON.stringify({ value: value.toString('base64'), salt: salt.toString('base64'), additionalParameters: {} }),
      credentialData: JSON.stringify(credentialData),
    });
    const fromKeycloak = [
      { id: randomUUID(), username: 'kc-pbkdf2', email: 'kc-pbkdf2@example.test', enabled: true, realmRoles: ['editor', 'default-roles-shop'], groups: ['/staff/Sales & Marketing', '/partners'], attributes: { department: ['sales'], tags: ['a', 'b'], unset: [] }, credentials: [credential(pbkdf2Sync(PASSWORD, salt, 27500, 64, 'sha256'), { hashIterations: 27500, algorithm: 'pbkdf2-sha256', additionalParameters: {} })] },
      { id: randomUUID(), username: 'kc-argon2', email: 'kc-argon2@example.test', enabled: true, federatedIdentities: [{ identityProvider: 'Google', userId: '10769150350006150715113082367', userName: 'kc-argon2@gmail.example' }], credentials: [credential(argon2Sync('argon2id', { message: PASSWORD, nonce: salt, memory: 7168, passes: 5, parallelism: 1, tagLength: 32 }), { hashIterations: 5, algorithm: 'argon2', additionalParameters: { hashLength: ['32'], memory: ['7168'], type: ['id'], version: ['1.3'], parallelism: ['1'] } })] },
      { id: randomUUID(), username: 'kc-off', email: 'kc-off@example.test', enabled: false, requiredActions: ['UPDATE_PASSWORD', 'CONFIGURE_TOTP', 'VERIFY_EMAIL'] },
    ];
    const realmFile = path.join(scratch, 'shop-realm.json');
    // Its groups: a subgroup's members hold its parents' roles too; a group named only by a user is made without roles.
    const realmGroups = [{ name: 'staff', path: '/staff', realmRoles: ['staff', 'offline_access'], subGroups: [{ name: 'Sales & Marketing', path: '/staff/Sales & Marketing', realmRoles: ['sales'] }] }];
    await writeFile(realmFile, JSON.stringify({ realm: 'shop', groups: realmGroups, users: fromKeycloak }));
    const fromRealm = await authz(['users', 'import', '--format', 'keycloak', realmFile, '--json']);
    expect({ code: fromRealm.code, stderr: fromRealm.stderr }).toEqual({ code: 0, stderr: '' });
    const realmImport = JSON.parse(fromRealm.stdout) as {
      created: { id: string; roles: string[]; groups: string[]; disabledAt: string | null; passwordChangeRequired: boolean; totpRequired: boolean; attributes: Record<string, unknown> }[];
      createdGroups: string[];
    };
    const createdFromRealm = realmImport.created;
    expect(createdFromRealm.map((user) => user.id)).toEqual(fromKeycloak.map((user) => user.id));
    expect(createdFromRealm[0]?.roles).toEqual(['editor']);
    expect(createdFromRealm[0]?.groups).toEqual(['staff/Sales & Marketing', 'partners']);
    expect(realmImport.createdGroups).toEqual(['staff', 'staff/Sales & Marketing', 'partners']);
    const groups = JSON.parse((await authz(['groups', 'list', '--json'])).stdout) as { name: string; roles: string[] }[];
    expect(groups.map(({ name, roles }) => [name, roles])).toEqual([
      ['partners', []],
      ['staff', ['staff']],
      ['staff/Sales & Marketing', ['staff', 'sales']],
    ]);
    // Keycloak keeps every attribute as a list: one value becomes text, more stay a list, none is left out.
    expect(createdFromRealm[0]?.attributes).toEqual({ department: 'sales', tags: ['a', 'b'] });
    expect(createdFromRealm[2]?.disabledAt).toEqual(expect.any(String));
    // Keycloak's required actions "Update Password" and "Configure OTP" carry over; the others are not ours to keep.
    expect(createdFromRealm.map((user) => [user.passwordChangeRequired, user.totpRequired])).toEqual([[false, false], [false, false], [true, true]]);
    expectRefusal(await authz(['users', 'import', '--format', 'ldif', realmFile]), 2, /argument 'ldif' is invalid/);
    // Keycloak's federated identities are linked identities here, by the provider's alias lower-cased.
    const linked = JSON.parse((await authz(['users', 'identities', 'kc-argon2@example.test', '--json'])).stdout) as Record<string, unknown>[];
    expect(linked).toEqual([expect.objectContaining({ provider: 'google', subject: '10769150350006150715113082367', email: 'kc-argon2@gmail.example' })]);
    // One provider account for two users, in a file or against one linked here, is refused whole.
    const twice = [
      { email: 'link-1@example.test', linkedIdentities: [{ provider: 'corp', subject: 'same' }] },
      { email: 'link-2@example.test', linkedIdentities: [{ provider: 'corp', subject: 'same' }] },
    ];
    expectRefusal(await authz(['users', 'import', '-'], JSON.stringify(twice)), 1, /^authz: entry 2: the corp account same is also at entry 1\n$/);
    const taken = { email: 'link-3@example.test', linkedIdentities: [{ provider: 'google', subject: '10769150350006150715113082367' }] };
    expectRefusal(await authz(['users', 'import', '-'], JSON.stringify(taken)), 1, /^authz: a linked identity of the file signs in to a user here already; nothing was imported\n$/);
    expect((await authz(['users', 'list'])).stdout).not.toContain('link-3@example.test');
    const badProvider = { email: 'link-4@example.test', linkedIdentities: [{ provider: 'Not An Id', subject: 'x' }] };
    expectRefusal(await authz(['users', 'import', '-'], JSON.stringify(badProvider)), 1, /^authz: line 1: linkedIdentities\.0\.provider: must be 1–32 lower-case letters, digits and dashes\n$/);

    if (!schema) return; // the server below shares the database: Postgres only (always so under CI)
    const server = await startTestServer({ env: { DATABASE_SCHEMA: schema, CLIENT_SECRET_PEPPERS: PEPPERS } });
    try {
      const { clientId, secret } = await createWebClient(server, { firstParty: true });
      const rp = await discover(server, clientId, secret);
      for (const [email, id] of [['moved-1@example.test', keptId], ['kc-pbkdf2@example.test', fromKeycloak[0]?.id], ['kc-argon2@example.test', fromKeycloak[1]?.id]]) {
        const [before] = await server.services.db('users').where({ id }).select('password_hash');
        const { tokens } = await signInAndRedeem(rp, { email: email as string, userId: id as string });
        expect(tokens.claims()?.sub).toBe(id);
        const [after] = await server.services.db('users').where({ id }).select('password_hash');
        expect({ email, hash: after.password_hash }).toEqual({ email, hash: expect.stringMatching(/^\$2b\$/) }); // bcrypt at the server's cost now
        expect(after.password_hash).not.toBe(before.password_hash);
      }
    } finally {
      await server.close();
    }
  }, 120_000); // some 20 CLI processes and a server

  test('clients add prints the secret once; the server accepts it; list never shows it', async () => {
    const pairwise = await authz(['clients', 'add', '--type', 'web', '--name', 'Shop', '--redirect-uri', 'https://shop.example.test/cb', '--subject-type', 'pairwise']);
    expect(pairwise.stdout).toContain('subjects:      pairwise, for the sector shop.example.test\n');
    expectRefusal(await authz(['clients', 'add', '--type', 'service', '--name', 'Job', '--subject-type', 'pairwise']), 1, /a service client signs no users in, so it has no subjects to pair/);
    expectRefusal(await authz(['clients', 'add', '--type', 'web', '--name', 'X', '--redirect-uri', 'https://x.example.test/cb', '--subject-type', 'secret']), 2, /argument 'secret' is invalid/);
    const added = await authz(['clients', 'add', '--type', 'service', '--name', 'Nightly job', '--json']);
    expect(added.code).toBe(0);
    const created = JSON.parse(added.stdout) as { client_id: string; client_secret: string; grant_types: string[] };
    expect(created.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.grant_types).toEqual(['client_credentials']);

    const list = await authz(['clients', 'list']);
    expect(list.stdout).toContain(created.client_id);
    expect(list.stdout).not.toContain(created.client_secret);

    const rotated = await authz(['clients', 'rotate-secret', created.client_id, '--keep-old-for', '0', '--json']);
    // (Compared whole first, so that a failure shows what the command wrote to stderr.)
    expect({ code: rotated.code, stderr: rotated.stderr }).toEqual({ code: 0, stderr: '' });
    const { client_secret: newSecret } = JSON.parse(rotated.stdout) as { client_secret: string };
    expect(newSecret).not.toBe(created.client_secret);
    for (const keepOldFor of ['91d', '99999999999d']) {
      expectRefusal(await authz(['clients', 'rotate-secret', created.client_id, '--keep-old-for', keepOldFor]), 1, /^authz: the old secrets may keep working 0 to 90 days \(7776000 seconds\)\n$/);
    }

    if (!schema) return; // the server below shares the database: Postgres only (always so under CI)
    const server = await startTestServer({ env: { DATABASE_SCHEMA: schema, CLIENT_SECRET_PEPPERS: PEPPERS } });
    try {
      const token = (secret: string) =>
        fetch(`${server.issuer}/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${created.client_id}:${secret}`).toString('base64')}`,
          },
          body: 'grant_type=client_credentials',
        });
      expect((await token(newSecret)).status).toBe(200);
      expect((await token(created.client_secret)).status).toBe(401);

      // A user's consents, listed and withdrawn from the command line.
      const user = await createUser(server);
      const web = await createWebClient(server, { firstParty: true });
      await signInAndRedeem(await discover(server, web.clientId, web.secret), user);
      const grants = JSON.parse((await authz(['users', 'grants', user.email, '--json'])).stdout) as { grantId: string; clientId: string }[];
      expect(grants).toEqual([expect.objectContaining({ clientId: web.clientId })]);
      expect((await authz(['users', 'revoke-grant', user.email, grants[0]?.grantId as string])).code).toBe(0);
      expect(JSON.parse((await authz(['users', 'grants', user.email, '--json'])).stdout)).toEqual([]);

      // Passkeys: listed without their keys, one removed (audited by cli), a second removal refused.
      const passkey = new SoftwarePasskey(user.userId, new URL(server.issuer).origin);
      const challenge = newChallenge();
      await server.services.passkeys.register({ id: user.userId }, { credential: JSON.stringify(passkey.attestation({ challenge })), challenge, name: 'Phone' });
      const listed = JSON.parse((await authz(['users', 'passkeys', user.email, '--json'])).stdout) as Record<string, unknown>[];
      const noAaguid = '00000000-0000-0000-0000-000000000000';
      expect(listed).toEqual([{ id: passkey.id, name: 'Phone', synced: false, authenticator: null, aaguid: noAaguid, transports: ['internal'], createdAt: expect.any(String), lastUsedAt: null }]);
      expect((await authz(['users', 'passkeys', user.email])).stdout).toMatch(/Phone\s+no\s+\S+\s+never/);
      expect((await authz(['users', 'remove-passkey', user.email, passkey.id])).stdout).toBe(`passkey "Phone" of ${user.email} removed\n`);
      expectRefusal(await authz(['users', 'remove-passkey', user.email, passkey.id]), 1, /^authz: no passkey /);
      expect((await authz(['users', 'passkeys', user.email])).stdout).toContain('no passkeys');

      // Accounts at other identity providers: listed, one unlinked (audited by cli), a second unlinking refused.
      await server.services.linkedIdentities.link(user.userId, 'corp', 'staff-42', 'ada@corp.example');
      const identities = JSON.parse((await authz(['users', 'identities', user.email, '--json'])).stdout) as Record<string, unknown>[];
      expect(identities).toEqual([expect.objectContaining({ provider: 'corp', subject: 'staff-42', email: 'ada@corp.example' })]);
      expect((await authz(['users', 'identities', user.email])).stdout).toMatch(/corp\s+staff-42\s+ada@corp\.example/);
      expect((await authz(['users', 'unlink-identity', user.email, 'corp'])).stdout).toBe(`corp sign-in of ${user.email} unlinked\n`);
      expectRefusal(await authz(['users', 'unlink-identity', user.email, 'corp']), 1, /^authz: the account has no sign-in with corp linked/);
      expect((await authz(['users', 'identities', user.email])).stdout).toContain('no linked identities');
      await server.services.audit.flush();
      const unlinked = await queryAuditEvents(server.services.db, { type: 'identity_unlinked', accountId: user.userId });
      expect(unlinked.map((event) => event.detail)).toEqual([{ by: 'cli', provider: 'corp', email: 'ada@corp.example' }]);

      // Sessions live where the server keeps them (its Redis, when it has one): the CLI is pointed at the same.
      const sameStores = { ...env, REDIS_URL: server.env.REDIS_URL, REDIS_KEY_PREFIX: server.env.REDIS_KEY_PREFIX };
      const sessions = JSON.parse((await runToEnd('src/cli.ts', ['users', 'sessions', user.email, '--json'], sameStores)).stdout) as { uid: string }[];
      expect(sessions).toHaveLength(1);
      expect((await runToEnd('src/cli.ts', ['users', 'end-session', user.email, sessions[0]?.uid as string], sameStores)).code).toBe(0);
      expect(JSON.parse((await runToEnd('src/cli.ts', ['users', 'sessions', user.email, '--json'], sameStores)).stdout)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  test('clients add for a web app and an spa, then remove', async () => {
    const web = await authz(['clients', 'add', '--type', 'web', '--name', 'Web', '--redirect-uri', 'https://app.example.test/cb', '--first-party']);
    expect(web.stdout).toMatch(/client_secret: \S{43}/);
    const spa = await authz(['clients', 'add', '--type', 'spa', '--name', 'SPA', '--redirect-uri', 'http://localhost:5173/cb', '--client-id', 'my-spa']);
    expect(spa.stdout).toMatch(/client_id: +my-spa/);
    expect(spa.stdout).not.toMatch(/client_secret/);
    expect((await authz(['clients', 'remove', 'my-spa'])).code).toBe(0);
    expectRefusal(await authz(['clients', 'remove', 'my-spa']), 1, /no client my-spa/);
  });

  test('apis add and list', async () => {
    const added = await authz(['apis', 'add', '--indicator', 'https://api.example.test', '--name', 'API', '--scopes', 'read,write', '--token-ttl', '15m', '--default']);
    expect(added.stdout).toMatch(/registered API https:\/\/api\.example\.test \(jwt tokens, 900s\)/);
    expect((await authz(['apis', 'list'])).stdout).toMatch(/https:\/\/api\.example\.test\s+API\s+read write\s+jwt RS256, 900s\s+true/);
    expectRefusal(await authz(['apis', 'add', '--indicator', 'nope', '--name', 'Bad']), 1, /absolute URI/);
  });

  test('apis update changes the lifetime, scopes and default; nothing given is a usage error', async () => {
    await authz(['apis', 'add', '--indicator', 'https://stock.example.test', '--name', 'Stock', '--scopes', 'read', '--default']);
    await authz(['apis', 'add', '--indicator', 'https://other.example.test', '--name', 'Other']);
    const updated = await authz(['apis', 'update', 'https://other.example.test', '--token-ttl', '2h', '--scopes', 'a,b', '--default', '--json']);
    expect({ code: updated.code, stderr: updated.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(updated.stdout)).toMatchObject({ accessTokenTtl: 7200, scopes: ['a', 'b'], isDefault: true, name: 'Other' });
    // One default at a time: the old one gave way.
    const listed = JSON.parse((await authz(['apis', 'list', '--json'])).stdout) as { indicator: string; isDefault: boolean }[];
    expect(listed.filter((api) => api.isDefault).map((api) => api.indicator)).toEqual(['https://other.example.test']);
    expect((await authz(['apis', 'update', 'https://other.example.test', '--no-default', '--scopes', ''])).stdout).toMatch(/updated API/);
    expect(JSON.parse((await authz(['apis', 'list', '--json'])).stdout)).toContainEqual(
      expect.objectContaining({ indicator: 'https://other.example.test', isDefault: false, scopes: [] }),
    );
    expectRefusal(await authz(['apis', 'update', 'https://other.example.test']), 2, /nothing to change/);
    expectRefusal(await authz(['apis', 'update', 'https://other.example.test', '--token-ttl', '2d']), 1, /at most 86400 seconds/);
    expectRefusal(await authz(['apis', 'update', 'https://missing.example.test', '--name', 'x']), 1, /no API https:\/\/missing\.example\.test/);
  });

  test("the admin API's own registration can be neither changed nor removed, as through the admin API", async () => {
    const adminIndicator = 'http://localhost:3000/admin/v1'; // the default issuer's (ISSUER and PORT are cleared)
    expectRefusal(await authz(['apis', 'update', adminIndicator, '--format', 'opaque']), 1, /^authz: the admin API itself cannot be changed\n$/);
    expectRefusal(await authz(['apis', 'remove', adminIndicator]), 1, /^authz: the admin API itself cannot be removed\n$/);
  });

  test('clients add registers a mutual TLS client from its certificate file, where the server is told certificates (MTLS_CERTIFICATE_HEADER)', async () => {
    const certificate = await selfSignedCertificate('CN=billing');
    const file = path.join(scratch, 'billing.pem');
    await writeFile(file, certificate.pem);
    const args = ['clients', 'add', '--type', 'service', '--name', 'Billing', '--auth-method', 'self_signed_tls_client_auth', '--certificate-file', file, '--certificate-bound-tokens', '--json'];
    expectRefusal(await authz(args), 1, /certificateBoundTokens: mutual TLS is off on this server: set MTLS_CERTIFICATE_HEADER|tokenEndpointAuthMethod: mutual TLS is off/);
    const withMutualTls = { ...env, PROXY: 'true', MTLS_CERTIFICATE_HEADER: 'X-SSL-Client-Cert' };
    const added = await runToEnd('src/cli.ts', args, withMutualTls);
    expect(added.code).toBe(0);
    const client = JSON.parse(added.stdout) as Record<string, unknown>;
    expect(client).toMatchObject({ auth: 'self_signed_tls_client_auth', certificate_bound_tokens: true });
    expect(client.client_secret).toBeUndefined();
    const registered = await runToEnd('src/cli.ts', ['clients', 'add', '--type', 'service', '--name', 'Ledger', '--auth-method', 'tls_client_auth', '--tls-subject-dn', 'CN=ledger,O=Example'], withMutualTls);
    expectRefusal(registered, 1, /tokenEndpointAuthMethod: tls_client_auth needs MTLS_TRUSTED_CA_FILE/);
    const notACertificate = ['clients', 'add', '--type', 'service', '--name', 'X', '--auth-method', 'self_signed_tls_client_auth', '--certificate-file', path.join(scratch, 'billing.pem.missing')];
    expectRefusal(await runToEnd('src/cli.ts', notACertificate, withMutualTls), 1, /--certificate-file: cannot read .*billing\.pem\.missing \(ENOENT\)/);
  });

  test('clients update replaces or edits redirect URIs, scope and first-party status, with the checks of add', async () => {
    const added = await authz(['clients', 'add', '--type', 'web', '--name', 'Shop', '--redirect-uri', 'https://shop.example.test/a', '--client-id', 'shop', '--json']);
    expect(added.code).toBe(0);
    const show = async () => JSON.parse((await authz(['clients', 'show', 'shop'])).stdout) as Record<string, unknown>;
    expect(JSON.parse((await authz(['clients', 'show', 'shop', '--json'])).stdout)).toEqual(await show());
    const edited = await authz(['clients', 'update', 'shop', '--add-redirect-uri', 'https://shop.example.test/b', '--first-party', '--scope', 'openid,email']);
    expect({ code: edited.code, stderr: edited.stderr, stdout: edited.stdout }).toEqual({ code: 0, stderr: '', stdout: 'updated client shop\n' });
    expect(await show()).toMatchObject({
      redirect_uris: ['https://shop.example.test/a', 'https://shop.example.test/b'],
      first_party: true,
      scope: 'openid email',
    });
    await authz(['clients', 'update', 'shop', '--remove-redirect-uri', 'https://shop.example.test/a', '--no-first-party', '--name', 'Shop 2']);
    expect(await show()).toMatchObject({ name: 'Shop 2', redirect_uris: ['https://shop.example.test/b'], first_party: false });
    await authz(['clients', 'update', 'shop', '--redirect-uri', 'https://shop.example.test/c', '--redirect-uri', 'https://shop.example.test/d']);
    expect(await show()).toMatchObject({ redirect_uris: ['https://shop.example.test/c', 'https://shop.example.test/d'] });

    expectRefusal(await authz(['clients', 'update', 'shop', '--remove-redirect-uri', 'https://shop.example.test/c', '--remove-redirect-uri', 'https://shop.example.test/d']), 1, /needs at least one redirect URI/);
    expectRefusal(await authz(['clients', 'update', 'shop', '--add-redirect-uri', 'https://shop.example.test/x#frag']), 1, /redirectUris: /);
    expectRefusal(await authz(['clients', 'update', 'shop']), 2, /nothing to change/);
    expectRefusal(await authz(['clients', 'update', 'nobody', '--name', 'x']), 1, /no client nobody/);
    expect(await show()).toMatchObject({ name: 'Shop 2', redirect_uris: ['https://shop.example.test/c', 'https://shop.example.test/d'] });
  });

  test('bad arguments get the usage and exit 2', async () => {
    for (const args of [
      ['bogus'],
      ['clients', 'add', '--type', 'robot', '--name', 'R'],
      ['clients', 'add', '--type', 'web'],
      ['clients', 'rotate-secret', 'x', '--keep-old-for', 'soon'],
      ['users', 'add'],
      ['clients', 'show', 'x', '--jsn'], // a mistyped option, where an id may start with '-': one argument too many
    ]) {
      const result = await authz(args);
      expectRefusal(result, 2, /error: .+\n\(run with --help for usage\)/);
    }
    const help = await authz(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: authz/);
  });

  test("a generated id that starts with '-' is taken as the id, not as an option", async () => {
    // One base64url id in 64 starts with '-' (client ids; oidc-provider's session and grant ids).
    expectRefusal(await authz(['clients', 'show', '-Zx9_unknown']), 1, /^authz: no client -Zx9_unknown\n$/);
    expectRefusal(await authz(['clients', 'rotate-secret', '-Zx9_unknown', '--keep-old-for', '0']), 1, /^authz: no client -Zx9_unknown\n$/);
    await authz(['users', 'add', '--email', 'dash@example.test']);
    expectRefusal(await authz(['users', 'revoke-grant', 'dash@example.test', '-Zx9_unknown']), 1, /^authz: no grant -Zx9_unknown of user /);
    expectRefusal(await authz(['users', 'end-session', 'dash@example.test', '-Zx9_unknown']), 1, /^authz: no session -Zx9_unknown of user /);
  });

  test('refused input: one line, exit 1, nothing written', async () => {
    const result = await authz(['clients', 'add', '--type', 'web', '--name', 'Evil', '--redirect-uri', 'http://evil.example.test/cb']);
    expectRefusal(result, 1, /^authz: redirectUris: http:\/\/evil\.example\.test\/cb must use https/);
    expect((await authz(['clients', 'list'])).stdout).not.toContain('Evil');
  });

  test('a database or Redis that cannot be reached: one line naming it and the variable to check, exit 75', async () => {
    const nobodyListens = await freePort();
    const noDatabase = await runToEnd('src/cli.ts', ['users', 'list'], { ...env, DATABASE_URL: `postgres://postgres@127.0.0.1:${nobodyListens}/test` });
    expectRefusal(noDatabase, 75, /^authz: cannot reach PostgreSQL \(connect ECONNREFUSED 127\.0\.0\.1:\d+\): is it running, and does DATABASE_URL point at it\?\n$/);
    expect(noDatabase.stdout).toBe('');
    // With a schema of its own, the first connection is the one that creates the schema: it must fail as quietly.
    const noDatabaseForSchema = await runToEnd('src/cli.ts', ['users', 'list', '--json'], {
      ...env,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${nobodyListens}/test`,
      DATABASE_SCHEMA: 'cli_unreachable',
    });
    expectRefusal(noDatabaseForSchema, 75, /^authz: cannot reach PostgreSQL \(connect ECONNREFUSED 127\.0\.0\.1:\d+\): is it running, and does DATABASE_URL point at it\?\n$/);
    expect(noDatabaseForSchema.stdout).toBe('');

    expect((await authz(['users', 'add', '--email', 'away@example.test'])).code).toBe(0);
    const noRedis = await runToEnd('src/cli.ts', ['users', 'sessions', 'away@example.test'], { ...env, REDIS_URL: `redis://127.0.0.1:${nobodyListens}` });
    expectRefusal(noRedis, 75, /^authz: cannot reach Redis: is it running, and does REDIS_URL point at it\?\n$/);
  });

  test('keys rotate, list and prune work on the keys folder', async () => {
    const rotated = await authz(['keys', 'rotate', '--activate-in', '0']);
    expect(rotated.code).toBe(0);
    expect(rotated.stderr).toMatch(/warning: the key signs in 0s/);
    const next = await authz(['keys', 'rotate', '--activate-in', '2h']);
    expect(next.stdout).toMatch(/wrote \d{8}T\d{6}Z\.pem/);
    const list = JSON.parse((await authz(['keys', 'list', '--json'])).stdout) as { kid: string; alg: string; state: string }[];
    expect(list.map((key) => `${key.alg} ${key.state}`).sort()).toEqual(['RS256 current', 'RS256 next']);
    expect((await authz(['keys', 'prune'])).stdout).toBe('no expired keys\n');
    // For scripts: what rotate wrote (or found) and what prune removed, as JSON.
    const later = JSON.parse((await authz(['keys', 'rotate', '--activate-in', '3h', '--json'])).stdout) as { kid: string; alg: string; created: boolean; activatesAt: string };
    expect(later).toEqual({ kid: expect.stringMatching(/^\d{8}T\d{6}Z$/), alg: 'RS256', created: true, activatesAt: expect.any(String) });
    expect(new Date(later.activatesAt).getTime()).toBeGreaterThan(Date.now() + 2.9 * 3600_000);
    expect(JSON.parse((await authz(['keys', 'prune', '--json'])).stdout)).toEqual({ removed: [] });
    await rm(path.join(scratch, 'keys', `${later.kid}.pem`));
    expect((await readdir(path.join(scratch, 'keys'))).filter((name) => name.endsWith('.pem'))).toHaveLength(2);
  });

  test('a new cookie secret signs only once every process can have read it, unless told otherwise', async () => {
    const signsFrom = (stdout: string) => Date.parse(stdout.match(/signs from (\S+)/)?.[1] ?? '');
    const staged = await authz(['keys', 'rotate-cookie-secret']);
    expect(staged.code).toBe(0);
    expect(staged.stdout).toMatch(/^wrote \d{8}T\d{6}Z\.cookie-secret; it signs from /);
    // Two rescans of keys/ (KEYS_RESCAN_INTERVAL, 30 s by default) from now.
    expect(signsFrom(staged.stdout) - Date.now()).toBeGreaterThan(55_000);
    expect(staged.stderr).toBe('');
    const urgent = await authz(['keys', 'rotate-cookie-secret', '--activate-in', '0']);
    expect(Math.abs(signsFrom(urgent.stdout) - Date.now())).toBeLessThan(5_000);
    expect(urgent.stderr).toMatch(/^warning: it signs in 0s; a process that has not rescanned/);
    expect((await readdir(path.join(scratch, 'keys'))).filter((name) => name.endsWith('.cookie-secret'))).toHaveLength(2);
  });
});

describe('authz CLI: links sent by mail', () => {
  test('send-password-reset mails a link over SMTP, prints it without SMTP_URL in development, and says why when the relay cannot be reached', async () => {
    const mail = await startMailCatcher();
    try {
      expect((await authz(['users', 'add', '--email', 'forgetful@example.test'])).code).toBe(0);
      const sent = await runToEnd('src/cli.ts', ['users', 'send-password-reset', 'forgetful@example.test'], { ...env, SMTP_URL: mail.url, ISSUER: 'https://id.example.test' });
      expect(sent.stderr).toBe('');
      expect(sent.stdout).toMatch(/^sent to forgetful@example\.test; the link works once, until \d{4}-\d\d-\d\dT/);
      const received = await mail.next('forgetful@example.test');
      expect(linkIn(received, 'https://id.example.test/account/password-reset/new?token=')).toMatch(/token=[\w-]{43}$/);
      expect(received.text).toContain('An administrator of id.example.test sent you this link to choose a password for your account forgetful@example.test.');

      // An invitation: a user with no password, mailed the link to choose one.
      const invited = await runToEnd('src/cli.ts', ['users', 'add', '--email', 'invited@example.test', '--invite'], { ...env, SMTP_URL: mail.url });
      expect(invited.stdout).toMatch(/^created user invited@example\.test \(sub [\w-]+\)\nmailed a link to choose a password; it works once, until \d{4}-/);
      expect(invited.stdout).not.toContain('password: ');
      expect((await mail.next('invited@example.test')).subject).toBe('Choose your password at localhost:3000');
      expectRefusal(await authz(['users', 'add', '--email', 'other@example.test', '--invite', '--password', 'a long enough password']), 1, /^authz: --invite mails a link to choose a password: give no password with it\n$/);

      // A new address set by an administrator is unconfirmed, and the CLI says how to ask for the confirmation.
      const moved = await authz(['users', 'set-email', 'forgetful@example.test', 'Remembering@example.test']);
      expect(moved.stdout).toBe(
        'remembering@example.test is the user’s address now, unconfirmed; to ask them to confirm it: authz users send-email-confirmation remembering@example.test\n',
      );
      expectRefusal(await authz(['users', 'set-email', 'remembering@example.test', 'invited@example.test']), 1, /^authz: a user with the email invited@example\.test already exists\n$/);
      expect((await authz(['users', 'set-email', 'remembering@example.test', 'forgetful@example.test'])).code).toBe(0);

      // Development without SMTP_URL: the mail, link and all, is printed for the operator to pass on.
      const printed = await authz(['users', 'send-email-confirmation', 'forgetful@example.test']);
      expect(printed.code).toBe(0);
      expect(printed.stdout).toContain('SMTP_URL is not set: this mail was not sent, it is printed here instead');
      expect(printed.stdout).toMatch(/\/account\/email\/confirm\?token=[\w-]{43}/);

      const unreachable = await runToEnd('src/cli.ts', ['users', 'send-password-reset', 'forgetful@example.test'], { ...env, SMTP_URL: 'smtp://127.0.0.1:9' });
      expectRefusal(unreachable, 1, /^authz: the mail to forgetful@example\.test was not sent: .*ECONNREFUSED/);
      expectRefusal(await authz(['users', 'send-password-reset', 'nobody@example.test']), 1, /^authz: no user/);
    } finally {
      await mail.close();
    }
  });
});

describe('authz CLI on the embedded database', () => {
  test('refuses to open it while another process holds it, naming that process', async () => {
    const dataDir = path.join(scratch, 'embedded');
    const embedded = cleanEnvironment({ DATA_DIR: dataDir, KEYS_DIR: path.join(scratch, 'keys'), CLIENT_SECRET_PEPPERS: PEPPERS });
    expect((await runToEnd('src/cli.ts', ['users', 'list'], embedded)).code).toBe(0);
    const { openDatabase, closeDatabase } = await import('../../src/store/database.js');
    const held = await openDatabase({ embeddedDir: path.join(dataDir, 'pglite') });
    try {
      const refused = await runToEnd('src/cli.ts', ['users', 'list'], embedded);
      expectRefusal(refused, 1, new RegExp(`open in another process \\(pid ${process.pid}\\)`));
    } finally {
      await closeDatabase(held);
    }
    expect((await runToEnd('src/cli.ts', ['users', 'list'], embedded)).code).toBe(0);
  });
});
