/**
 * What a new password must be (NIST SP 800-63B §3.1.1.2): long enough, within bcrypt's 72 bytes, not among the
 * passwords guessed first nor the deployment's own list, and not the account's address, name or the service's.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PasswordPolicy, readBlocklist, serviceWordsOf } from '../../src/accounts/password-policy.js';

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
