/**
 * What one request's storage calls hand on to later calls of the same request, so that a request makes fewer
 * round trips: a record read together with another one (a refresh token with its grant; a userinfo call's grant
 * with its user, ./grant-read-ahead.ts), and a refresh token's consumption, written together with the token that
 * replaces it (src/store/refresh-token-adapter.ts).
 *
 * Each entry is taken once, by the call it was left for, so nothing read here can go stale within a request.
 * Outside a scope (the CLI, the admin API, tests calling adapters directly) nothing is kept and every call goes
 * to the store.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<Map<string, unknown>>();

/** The key under which a record read ahead of its own lookup waits (a Grant, a User). */
export const foundKey = (model: string, id: string) => `found:${model}:${id}`;

/** Runs one request's work (the provider's middleware) in its own scope. */
export function inRequestScope<T>(work: () => T): T {
  return scope.run(new Map(), work);
}

/** Whether this call runs inside a request scope, where what is left can be taken later. */
export function inRequest(): boolean {
  return scope.getStore() !== undefined;
}

/** Leaves `value` for the next `take(key)` of this request; false when there is no request scope. */
export function leave(key: string, value: unknown): boolean {
  const entries = scope.getStore();
  if (!entries) return false;
  entries.set(key, value);
  return true;
}

/** What was left under `key` in this request (once), or `undefined`. */
export function take<T>(key: string): T | undefined {
  const entries = scope.getStore();
  if (!entries?.has(key)) return undefined;
  const value = entries.get(key) as T;
  entries.delete(key);
  return value;
}
