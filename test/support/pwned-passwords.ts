/**
 * A stand-in for Have I Been Pwned's Pwned Passwords range API (this machine has no internet): it knows the
 * passwords it is given as breached, answers `GET /range/<5 hex>` with the SHA-1 suffixes under that prefix (each
 * breached one with a count, and decoys of count 0 when asked for padding, as the real one does), and notes each
 * request, so that tests can see that nothing but the prefix left the server.
 */
import { createHash } from 'node:crypto';
import { type Server, createServer } from 'node:http';

export interface PwnedPasswords {
  /** The range API's base, to which the prefix is appended (PASSWORD_BREACH_API). */
  rangeApi: string;
  requests: { path: string; padding: string | undefined }[];
  /** Answers 503 from now on (an outage), or again as before. */
  failing: boolean;
  close(): Promise<void>;
}

const sha1 = (password: string) => createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();

/** `decoys`: passwords whose hashes come back as padding (count 0) when padding is asked for. */
export async function startPwnedPasswords(breached: readonly string[], decoys: readonly string[] = []): Promise<PwnedPasswords> {
  const known = breached.map(sha1);
  const padding = decoys.map(sha1);
  const requests: PwnedPasswords['requests'] = [];
  const state = { failing: false };
  const server: Server = createServer((request, response) => {
    const path = request.url ?? '';
    requests.push({ path, padding: request.headers['add-padding'] as string | undefined });
    const prefix = /^\/range\/([0-9A-F]{5})$/i.exec(path)?.[1]?.toUpperCase();
    if (state.failing) return response.writeHead(503).end();
    if (!prefix) return response.writeHead(400).end('The hash prefix was not in a valid format');
    const lines = known.filter((hash) => hash.startsWith(prefix)).map((hash) => `${hash.slice(5)}:${1000 + hash.charCodeAt(5)}`);
    if (request.headers['add-padding'] === 'true') lines.push(...padding.filter((hash) => hash.startsWith(prefix)).map((hash) => `${hash.slice(5)}:0`), `${'0'.repeat(35)}:0`);
    response.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return {
    rangeApi: `http://127.0.0.1:${address.port}/range/`,
    requests,
    get failing() {
      return state.failing;
    },
    set failing(value: boolean) {
      state.failing = value;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A password's SHA-1 prefix as the range API is asked for it. */
export const prefixOf = (password: string) => sha1(password).slice(0, 5);
/** The rest of it, which must never be sent. */
export const suffixOf = (password: string) => sha1(password).slice(5);
