/**
 * Our signing keys sign with node's crypto, on the event loop or on the thread pool: both give the very RS256
 * signature WebCrypto gives (RSASSA-PKCS1-v1_5 is deterministic), and only the public half is ever handed out.
 */
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { LocalSigningKey } from '../../src/keys/local-signing-key.js';
import type { SigningJwk } from '../../src/keys/signing-keys.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk: SigningJwk = { ...privateKey.export({ format: 'jwk' }), kid: '20261201T000000Z', alg: 'RS256', use: 'sig' };
const signingInput = Buffer.from('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9');

async function webCryptoSignature(): Promise<Buffer> {
  const key = await webcrypto.subtle.importKey('jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
  return Buffer.from(await webcrypto.subtle.sign('RSASSA-PKCS1-v1_5', key, signingInput));
}

describe('local signing keys', () => {
  test.each([
    ['on the event loop', true],
    ['on the thread pool', false],
  ])('sign RS256 %s exactly as WebCrypto does', async (_where, onEventLoop) => {
    const key = new LocalSigningKey(jwk, { onEventLoop });
    const signature = key.sign(signingInput);
    expect(signature instanceof Promise).toBe(!onEventLoop);
    expect(Buffer.from(await signature)).toEqual(await webCryptoSignature());
  });

  test('describe themselves by kid and alg, and hand out only the public half', () => {
    const key = new LocalSigningKey(jwk, { onEventLoop: true });
    expect({ kid: key.kid, alg: key.alg, use: key.use, kty: key.kty, n: key.n, e: key.e }).toEqual({
      kid: jwk.kid,
      alg: 'RS256',
      use: 'sig',
      kty: 'RSA',
      n: jwk.n,
      e: jwk.e,
    });
    expect(key.keyObject().type).toBe('public');
    expect(key.keyObject().export({ format: 'jwk' })).toEqual({ kty: 'RSA', n: jwk.n, e: jwk.e });
  });
});
