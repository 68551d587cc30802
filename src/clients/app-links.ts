/**
 * An app's pages that people are shown on the consent page (OpenID Connect Registration §2): its home page
 * (`client_uri`), privacy policy (`policy_uri`) and terms of service (`tos_uri`). An administrator gives them as
 * `clientUri`, `policyUri`, `tosUri`; an app that registers itself as the spec names them.
 */
import { z } from 'zod';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A page about the app: https, or http on this machine (development). */
export const webPage = z
  .string()
  .max(2048)
  .refine((uri) => {
    const url = URL.parse(uri);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters and spaces are what is refused
    return !/[\s\u0000-\u001f\u007f]/.test(uri) && (url?.protocol === 'https:' || (url?.protocol === 'http:' && LOOPBACK.has(url.hostname)));
  }, 'must be an https URL');

/** The links as the client's record has them (kept in `metadata` as client_uri, policy_uri, tos_uri); null: none. */
export interface AppLinks {
  clientUri: string | null;
  policyUri: string | null;
  tosUri: string | null;
}
