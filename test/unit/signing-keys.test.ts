/**
 * Signing key files: every problem names the file at fault; encrypted keys need the right passphrase.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KeyFileError, readKeyFiles, writeNewKey } from '../../src/keys/signing-keys.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'authz-keys-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const rsaPem = (bits: number) =>
  generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

describe('signing key files', () => {
  test('a missing folder means no keys', async () => {
    expect(await readKeyFiles(path.join(dir, 'absent'))).toEqual([]);
  });

  test('a new key loads as an RS256 signing JWK named after its activation time', async () => {
    const activatesAt = new Date('2026-11-24T12:00:00Z');
    const { kid, created } = await writeNewKey(dir, { activatesAt });
    expect(created).toBe(true);
    expect(kid).toBe('20261124T120000Z');
    const [key, ...rest] = await readKeyFiles(dir);
    expect(rest).toEqual([]);
    expect(key?.activatesAt).toEqual(activatesAt);
    expect(key?.jwk).toMatchObject({ kid, kty: 'RSA', alg: 'RS256', use: 'sig' });
  });

  test('an ES256 key (EC P-256) is named apart from the RSA key of the same moment, and a P-256 key of any name signs ES256', async () => {
    const activatesAt = new Date('2026-11-24T12:00:00Z');
    const [rsa, ec] = await Promise.all([writeNewKey(dir, { activatesAt }), writeNewKey(dir, { activatesAt, alg: 'ES256' })]);
    expect([rsa.kid, ec.kid]).toEqual(['20261124T120000Z', '20261124T120000Z-es256']);
    await writeFile(path.join(dir, 'brought.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string);
    const keys = await readKeyFiles(dir);
    expect(Object.fromEntries(keys.map((key) => [key.kid, [key.alg, key.jwk.kty, key.jwk.crv, key.activatesAt.toISOString()]]))).toEqual({
      '20261124T120000Z': ['RS256', 'RSA', undefined, activatesAt.toISOString()],
      '20261124T120000Z-es256': ['ES256', 'EC', 'P-256', activatesAt.toISOString()],
      brought: ['ES256', 'EC', 'P-256', new Date(0).toISOString()],
    });
  });

  test('PS256 and EdDSA keys: an RSA key named *-ps256 signs PS256, an Ed25519 key of any name EdDSA', async () => {
    const activatesAt = new Date('2026-11-24T12:00:00Z');
    const written = await Promise.all((['RS256', 'PS256', 'EdDSA'] as const).map((alg) => writeNewKey(dir, { activatesAt, alg })));
    expect(written.map((key) => key.kid)).toEqual(['20261124T120000Z', '20261124T120000Z-ps256', '20261124T120000Z-eddsa']);
    await writeFile(path.join(dir, 'brought-PS256.pem'), rsaPem(2048));
    await writeFile(path.join(dir, 'brought-ed.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const keys = await readKeyFiles(dir);
    expect(Object.fromEntries(keys.map((key) => [key.kid, [key.alg, key.jwk.kty, key.jwk.crv]]))).toEqual({
      '20261124T120000Z': ['RS256', 'RSA', undefined],
      '20261124T120000Z-ps256': ['PS256', 'RSA', undefined],
      '20261124T120000Z-eddsa': ['EdDSA', 'OKP', 'Ed25519'],
      'brought-PS256': ['PS256', 'RSA', undefined],
      'brought-ed': ['EdDSA', 'OKP', 'Ed25519'],
    });
  });

  test('one RSA key under an RS256 and a PS256 name is refused: one key, one algorithm', async () => {
    const pem = rsaPem(2048);
    await writeFile(path.join(dir, '20260101.pem'), pem);
    await writeFile(path.join(dir, '20260101-ps256.pem'), pem);
    await expect(readKeyFiles(dir)).rejects.toThrow(/20260101(-ps256)?\.pem: holds the same key as/);
  });

  test('two writers of the same key create exactly one file', async () => {
    const activatesAt = new Date('2026-12-01T00:00:00Z');
    const results = await Promise.all([writeNewKey(dir, { activatesAt }), writeNewKey(dir, { activatesAt })]);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(await readKeyFiles(dir)).toHaveLength(1);
  });

  test('an encrypted key needs the right passphrase', async () => {
    await writeNewKey(dir, { activatesAt: new Date(), passphrase: 'open sesame' });
    expect(await readKeyFiles(dir, 'open sesame')).toHaveLength(1);
    await expect(readKeyFiles(dir, 'wrong')).rejects.toThrow(/cannot be decrypted with KEYS_PASSPHRASE/);
    await expect(readKeyFiles(dir)).rejects.toThrow(/is encrypted; set KEYS_PASSPHRASE/);
  });

  test('a name without a date counts as active since forever', async () => {
    await writeFile(path.join(dir, 'legacy.pem'), rsaPem(2048));
    const [key] = await readKeyFiles(dir);
    expect(key?.activatesAt.getTime()).toBe(0);
  });

  test.each([
    ['a corrupt file', 'bad.pem', () => 'not a key', /bad\.pem: is not a PEM private key/],
    ['a key that is too weak', 'weak.pem', () => rsaPem(1024), /weak\.pem: RSA key has 1024 bits/],
    [
      'an EC key on another curve than P-256',
      'ec.pem',
      () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      /ec\.pem: is a EC secp384r1 key; RSA \(RS256, or PS256 when named \*-ps256\.pem\), EC P-256 \(ES256\) and Ed25519 \(EdDSA\) keys are supported/,
    ],
    [
      'an Ed448 key',
      'ed.pem',
      () => generateKeyPairSync('ed448').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      /ed\.pem: is a ed448 key; RSA/,
    ],
    [
      'an RSA-PSS key, which has no JWK form',
      'pss.pem',
      () => generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      /pss\.pem: is an RSA-PSS \(RSASSA-PSS\) key, which has no JWK form; write it as a plain RSA key named <stamp>-ps256\.pem/,
    ],
    ['a file name that is not a usable kid', 'bad kid.pem', () => rsaPem(2048), /may only use/],
  ])('%s is refused with the file named', async (_name, file, content, message) => {
    await writeFile(path.join(dir, file), content());
    await expect(readKeyFiles(dir)).rejects.toBeInstanceOf(KeyFileError);
    await expect(readKeyFiles(dir)).rejects.toThrow(message);
  });

  test('the same key under two names (a duplicated kid) is refused, RSA or EC', async () => {
    const ecPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    for (const pem of [rsaPem(2048), ecPem]) {
      await writeFile(path.join(dir, '20260101.pem'), pem);
      await writeFile(path.join(dir, '20260101-copy.pem'), pem);
      await expect(readKeyFiles(dir)).rejects.toThrow(/holds the same key as/);
    }
    // Two different EC keys are two keys.
    await writeFile(path.join(dir, '20260101-copy.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    expect(await readKeyFiles(dir)).toHaveLength(2);
  });
});
