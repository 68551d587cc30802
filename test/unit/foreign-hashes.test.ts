/**
 * Password hashes from other identity providers, checked against hashes Keycloak itself wrote (found in public
 * realm exports and database dumps, each with the password it hashes), so that the import reads what Keycloak
 * really stores, not what we believe it stores.
 */
import { pbkdf2Sync } from 'node:crypto';
import { isForeignHash, parseForeignHash, pbkdf2Phc, verifyForeignHash } from '../../src/accounts/foreign-hashes.js';
import { keycloakEntries } from '../../src/accounts/keycloak-import.js';
import { PasswordHasher } from '../../src/accounts/passwords.js';
import { parseUserFile } from '../../src/accounts/user-import.js';

/** Keycloak's password credential as its exports write it: two JSON strings. */
const keycloakCredential = (value: string, salt: string, credentialData: object) => ({
  type: 'password',
  secretData: JSON.stringify({ value, salt, additionalParameters: {} }),
  credentialData: JSON.stringify(credentialData),
});

const WRITTEN_BY_KEYCLOAK = {
  /** Keycloak before 24: pbkdf2-sha256, 27,500 iterations, a 256-bit key. */
  pbkdf2Sha256: { password: 'password', ...keycloakCredential('JsfNbCOIdZUbyBJ+BT+VoGI91Ec2rWLOvkLPDaX8e9k=', 'P5rtFkGtPfoaryJ6PizUJw==', { hashIterations: 27500, algorithm: 'pbkdf2-sha256' }) },
  /** The same with a 512-bit key, as other Keycloak versions wrote it. */
  pbkdf2Sha256Long: {
    password: 'Password1',
    ...keycloakCredential('UsKAhMJtom6iw6vtMcMmJYIUqafeauEd6gaBKpJXByIc7SkJxJACkNlKOAEFci6cnoxU9jUPLATLk+PMno143g==', 'kAzT9d8gCl6l5DjQ+D8Vlw==', {
      hashIterations: 27500,
      algorithm: 'pbkdf2-sha256',
    }),
  },
  /** Keycloak 25 on: Argon2id, version 1.3, 7 MiB, 5 passes. */
  argon2: {
    password: 'password',
    ...keycloakCredential('BruFLfFkjH/8erZ26NnrbkOrWiZuQyDRCHD9o0R6Scg=', 'Cf9AYCE5pAbb4CKEF0GUTA==', {
      hashIterations: 5,
      algorithm: 'argon2',
      additionalParameters: { hashLength: ['32'], memory: ['7168'], type: ['id'], version: ['1.3'], parallelism: ['1'] },
    }),
  },
};

function hashOfKeycloakUser(credential: object): string {
  const [entry] = keycloakEntries({ users: [{ username: 'ada', email: 'ada@example.test', credentials: [credential] }] });
  const hash = (entry?.value as { passwordHash?: string } | undefined)?.passwordHash;
  if (!hash) throw new Error(`no hash: ${entry?.problem}`);
  return hash;
}

describe('hashes Keycloak wrote', () => {
  test.each(Object.entries(WRITTEN_BY_KEYCLOAK))('%s: its password matches, another does not', async (_name, { password, ...credential }) => {
    const hash = hashOfKeycloakUser(credential);
    expect(isForeignHash(hash)).toBe(true);
    expect(typeof parseForeignHash(hash)).toBe('object');
    await expect(verifyForeignHash(password, hash)).resolves.toBe(true);
    await expect(verifyForeignHash(`${password}!`, hash)).resolves.toBe(false);
  });

  test('PHC strings: padded base64 reads as unpadded, and PBKDF2 with HMAC-SHA-1 is `$pbkdf2$`', async () => {
    const salt = Buffer.from('0123456789abcdef');
    const hash = pbkdf2Sync('über geheim', salt, 1000, 20, 'sha1');
    const phc = pbkdf2Phc('sha1', 1000, salt, hash);
    expect(phc).toMatch(/^\$pbkdf2\$i=1000\$[^=$]+\$[^=$]+$/);
    await expect(verifyForeignHash('über geheim', phc)).resolves.toBe(true);
    await expect(verifyForeignHash('über geheim', `$pbkdf2$i=1000$${salt.toString('base64')}$${hash.toString('base64')}`)).resolves.toBe(true);
  });

  test('parameters that would make one sign-in too costly, or a hash too short to mean anything, are refused', () => {
    const salt = Buffer.alloc(16).toString('base64');
    const hash = Buffer.alloc(32).toString('base64');
    expect(parseForeignHash(`$pbkdf2-sha256$i=99999999$${salt}$${hash}`)).toMatch(/iterations must be 1 to 10000000/);
    expect(parseForeignHash(`$argon2id$v=19$m=99999999,t=5,p=1$${salt}$${hash}`)).toMatch(/memory/);
    expect(parseForeignHash(`$pbkdf2-sha256$i=1000$${salt}$AAAA`)).toMatch(/hash must be 16 to 128 bytes/);
    expect(parseForeignHash('$argon2id$v=16$m=7168,t=5,p=1$AAAA$AAAA')).toMatch(/not a bcrypt hash, nor a PBKDF2 or Argon2/);
    expect(parseForeignHash('$sha256$whatever')).toMatch(/not a bcrypt hash/);
  });
});

describe('a Keycloak export as users to import', () => {
  test('keeps id, email, name, the roles that are the person’s, emailVerified, enabled and the password hash', () => {
    const [ada, bob] = parseUserFile(
      JSON.stringify({
        realm: 'shop',
        users: [
          {
            id: '0b5bbd3c-9c4e-4f61-8d8e-0e7f0a6b1c11',
            username: 'ada',
            email: 'Ada@Example.test',
            firstName: 'Ada',
            lastName: 'Lovelace',
            emailVerified: true,
            enabled: true,
            realmRoles: ['editor', 'default-roles-shop', 'offline_access', 'uma_authorization'],
            credentials: [{ type: 'otp', secretData: '{}', credentialData: '{}' }, { ...WRITTEN_BY_KEYCLOAK.argon2, password: undefined }],
          },
          { username: 'bob', email: 'bob@example.test', enabled: false },
        ],
      }),
      'keycloak',
    );
    expect(ada).toMatchObject({
      id: '0b5bbd3c-9c4e-4f61-8d8e-0e7f0a6b1c11',
      email: 'ada@example.test',
      name: 'Ada Lovelace',
      roles: ['editor'],
      emailVerified: true,
      disabled: false,
      passwordHash: expect.stringMatching(/^\$argon2id\$v=19\$m=7168,t=5,p=1\$/),
    });
    expect(bob).toMatchObject({ email: 'bob@example.test', roles: [], emailVerified: false, disabled: true });
    expect(bob?.passwordHash).toBeUndefined();
  });

  test('keeps the hashes of the "password-history" credentials, newest first, for PASSWORD_HISTORY', async () => {
    const { password: _current, ...current } = WRITTEN_BY_KEYCLOAK.pbkdf2Sha256Long;
    const { password: _older, ...older } = WRITTEN_BY_KEYCLOAK.pbkdf2Sha256;
    const { password: _newer, ...newer } = WRITTEN_BY_KEYCLOAK.argon2;
    const credentials = [current, { ...older, type: 'password-history', createdDate: 1_600_000_000_000 }, { ...newer, type: 'password-history', createdDate: 1_700_000_000_000 }];
    const [ada] = parseUserFile(JSON.stringify({ users: [{ username: 'ada', email: 'ada@example.test', credentials }] }), 'keycloak');
    expect(ada?.passwordHistory).toEqual([expect.stringMatching(/^\$argon2id\$/), expect.stringMatching(/^\$pbkdf2-sha256\$/)]);
    await expect(verifyForeignHash('password', ada?.passwordHistory[1] as string)).resolves.toBe(true);
    await expect(verifyForeignHash('Password1', ada?.passwordHash as string)).resolves.toBe(true);
  });

  test('each user that cannot be imported is named, with why', () => {
    const users = [
      { username: 'nomail' },
      { username: 'md5', email: 'md5@example.test', credentials: [keycloakCredential('AAAA', 'AAAA', { hashIterations: 1, algorithm: 'md5' })] },
      { username: 'old', email: 'old@example.test', credentials: [{ type: 'password', hashedSaltedValue: 'AAAA', salt: 'AAAA', hashIterations: 1 }] },
    ];
    expect(() => parseUserFile(JSON.stringify(users), 'keycloak')).toThrow(
      /^user 1 \(nomail\): email: .+; user 2 \(md5\): its password is hashed with "md5", which cannot be imported .+; user 3 \(old\): its password credential has no secretData$/,
    );
    expect(() => parseUserFile('{"realm":"shop"}', 'keycloak')).toThrow(/holds a "users" array/);
  });
});

describe('signing in with an imported hash', () => {
  test('is as slow as with bcrypt, so an account not yet signed into since the import cannot be told by timing', async () => {
    const hasher = new PasswordHasher(10);
    await hasher.prepareDecoy();
    const bcryptHash = await hasher.hash('the right password');
    const imported = pbkdf2Phc('sha256', 1000, Buffer.alloc(16, 1), pbkdf2Sync('the right password', Buffer.alloc(16, 1), 1000, 32, 'sha256'));
    const fastest = async (hash: string) => {
      let best = Number.POSITIVE_INFINITY;
      for (let run = 0; run < 3; run++) {
        const start = performance.now();
        await hasher.verify('a wrong password', hash);
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    // Without the decoy beside it, 1,000 PBKDF2 iterations answer in about a millisecond against bcrypt's 50 or more.
    expect(await fastest(imported)).toBeGreaterThan((await fastest(bcryptHash)) * 0.6);
    expect(hasher.needsRehash(imported)).toBe(true);
    await expect(hasher.verify('the right password', imported)).resolves.toBe(true);
  });
});
