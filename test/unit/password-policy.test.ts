/**
 * What a new password must be (NIST SP 800-63B §3.1.1.2): long enough, within bcrypt's 72 bytes, not among the
 * passwords guessed first nor the deployment's own list, and not the account's address, name or the service's;
 * nor, where asked for, a password known from a breach (against a stand-in for Have I Been Pwned's range API).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BreachedPasswords } from '../../src/accounts/breached-passwords.js';
import { PasswordPolicy, readBlocklist, serviceWordsOf } from '../../src/accounts/password-policy.js';
import { type PwnedPasswords, prefixOf, startPwnedPasswords, suffixOf } from '../support/pwned-passwords.js';

const policy = new PasswordPolicy({ serviceWords: serviceWordsOf('https://login.acme-corp.example') });
const ada = { email: 'Ada.Lovelace@example.test', name: 'Ada Lovelace' };

test('passphrases and unusual passwords pass, whatever their characters', async () => {
  for (const password of ['correct horse battery staple', 'analytical engine 1843', 'Wz7!qP2#vR', 'ναυτίλος-ωκεανός', 'ada lovelace rides again']) {
    expect(await policy.problem(password, ada)).toBeUndefined();
  }
});

test('the most common passwords are refused without case, and with digits or symbols put at the end', async () => {
  for (const password of ['password', 'PASSWORD', 'Password1!', 'qwerty123', 'iloveyou', 'sunshine2024', '123456789', 'trustno1']) {
    expect(await policy.problem(password)).toMatch(/one of the first that are guessed/);
  }
});

test('the account’s address, the part before its @, its name and the service’s name are refused', async () => {
  for (const password of ['ada.lovelace@example.test', 'Ada.Lovelace', 'ada.lovelace2024!', 'Ada Lovelace', 'adalovelace', 'lovelace', 'acme-corp!!']) {
    expect(await policy.problem(password, ada)).toMatch(/may not be your email address, your name or the name of this service/);
  }
});

test('length: at least PASSWORD_MIN_LENGTH characters, at most 72 bytes', async () => {
  expect(await policy.problem('short')).toBe('a password needs at least 8 characters');
  expect(await policy.problem('é'.repeat(37))).toBe('a password may be at most 72 bytes long');
  const stricter = new PasswordPolicy({ minLength: 15 });
  expect(await stricter.problem('analytical eng')).toBe('a password needs at least 15 characters');
  expect(await stricter.problem('analytical engine')).toBeUndefined();
});

test('a deployment’s own blocklist (PASSWORD_BLOCKLIST_FILE: one a line, # comments)', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'blocklist-')), 'words.txt');
  writeFileSync(file, '# our product names\nAcmeWidget\n\n  gizmo pro max  \r\n');
  const words = readBlocklist(file);
  expect(words).toEqual(['AcmeWidget', 'gizmo pro max']);
  const ours = new PasswordPolicy({ blocklist: words });
  expect(await ours.problem('acmewidget2025')).toMatch(/one of the first that are guessed/);
  expect(await ours.problem('Gizmo Pro Max')).toMatch(/one of the first that are guessed/);
  expect(await ours.problem('gizmo pro max plus a few words')).toBeUndefined();
});

describe('breached passwords (PASSWORD_BREACH_CHECK), asked of a range API by k-anonymity', () => {
  const BREACHED = 'tr0ub4dor and 3';
  const DECOY = 'only ever padding';
  let api: PwnedPasswords;
  beforeAll(async () => {
    api = await startPwnedPasswords([BREACHED], [DECOY]);
  });
  afterAll(() => api.close());

  test('a breached password is refused; only its hash prefix is sent, with padding asked for; a prefix is asked once a minute', async () => {
    const unavailable: string[] = [];
    const checked = new PasswordPolicy({ breached: new BreachedPasswords({ rangeApi: api.rangeApi, onUnavailable: (reason) => unavailable.push(reason) }) });
    expect(await checked.problem(BREACHED)).toBe('that password has appeared in a data breach, so it is among the first that are tried: choose another');
    expect(await checked.problem('a different passphrase entirely')).toBeUndefined();
    expect(api.requests).toEqual([
      { path: `/range/${prefixOf(BREACHED)}`, padding: 'true' },
      { path: `/range/${prefixOf('a different passphrase entirely')}`, padding: 'true' },
    ]);
    expect(JSON.stringify(api.requests)).not.toContain(suffixOf(BREACHED));
    // The page's check and the store's check of one password: one call.
    expect(await checked.problem(BREACHED)).toMatch(/data breach/);
    expect(api.requests).toHaveLength(2);
    // A padding line (count 0) is no breach.
    expect(await new BreachedPasswords({ rangeApi: api.rangeApi }).includes(DECOY)).toBe(false);
    expect(unavailable).toEqual([]);
  });

  test('a range API that fails or cannot be reached lets the password through, and says so', async () => {
    const unavailable: string[] = [];
    api.failing = true;
    try {
      const breached = new BreachedPasswords({ rangeApi: api.rangeApi, onUnavailable: (reason) => unavailable.push(reason) });
      expect(await new PasswordPolicy({ breached }).problem(BREACHED)).toBeUndefined();
      // Not kept: once the API is back, the same prefix is asked again.
      api.failing = false;
      expect(await new PasswordPolicy({ breached }).problem(BREACHED)).toMatch(/data breach/);
      const nowhere = new BreachedPasswords({ rangeApi: 'http://127.0.0.1:1/range/', onUnavailable: (reason) => unavailable.push(reason) });
      expect(await nowhere.includes(BREACHED)).toBe(false);
      expect(unavailable).toEqual(['the range API answered 503', expect.any(String)]);
    } finally {
      api.failing = false;
    }
  });
});
