/**
 * Cookie secrets rotate like keys: the newest activated signs, every other file still verifies.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readCookieSecrets, writeCookieSecret } from '../../src/keys/cookie-secrets.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'authz-cookies-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const secret = (letter: string) => letter.repeat(40);

describe('cookie secrets', () => {
  test('the newest active secret signs; a pending one and older ones verify', async () => {
    await writeFile(path.join(dir, '20260101T000000Z.cookie-secret'), secret('a'));
    await writeFile(path.join(dir, '20260201T000000Z.cookie-secret'), secret('b'));
    await writeFile(path.join(dir, '20260301T000000Z.cookie-secret'), secret('c'));
    expect(await readCookieSecrets(dir, new Date('2026-02-15T00:00:00Z'))).toEqual([secret('b'), secret('c'), secret('a')]);
    expect(await readCookieSecrets(dir, new Date('2026-03-15T00:00:00Z'))).toEqual([secret('c'), secret('b'), secret('a')]);
  });

  test('a short secret is refused with the file named', async () => {
    await writeFile(path.join(dir, '20260101T000000Z.cookie-secret'), 'short');
    await expect(readCookieSecrets(dir, new Date())).rejects.toThrow(/20260101T000000Z\.cookie-secret: a cookie secret needs/);
  });

  test('a written secret is random, long enough and created once', async () => {
    const when = new Date('2026-05-01T00:00:00Z');
    const [one, two] = await Promise.all([writeCookieSecret(dir, when), writeCookieSecret(dir, when)]);
    expect([one?.created, two?.created].filter(Boolean)).toHaveLength(1);
    const [written] = await readCookieSecrets(dir, when);
    expect(written?.length).toBeGreaterThanOrEqual(32);
  });
});
