/**
 * Webhook signatures as the Standard Webhooks specification writes them (https://www.standardwebhooks.com), so
 * that receivers verify with its libraries (`standardwebhooks` for TypeScript, and others for most languages):
 * an HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` under the secret's bytes, sent as
 * `webhook-signature: v1,<base64>`. During a rotation every secret signs, space-separated, and a receiver that
 * knows either accepts the message.
 */
import { createHmac } from 'node:crypto';

/** `whsec_` and the base64 of the key: how Standard Webhooks writes a secret. */
export const SECRET_PREFIX = 'whsec_';

/** The key bytes of a `whsec_…` secret. */
export const secretKey = (secret: string): Buffer => Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');

export function signatureHeader(keys: readonly Buffer[], id: string, timestampSeconds: number, body: string): string {
  return keys.map((key) => `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`).join(' ');
}
