/**
 * Errors that carry a reason a user can act on. The HTTP layer turns them into 4xx responses and the CLI into a
 * one-line message with a non-zero exit; anything else is a bug and is logged, never shown.
 */
import type { z } from 'zod';

/** The input was wrong: the message says what to change. */
export class InputError extends Error {
  override name = 'InputError';
}

/**
 * The input names something that already exists (a user's email, a client id, an API indicator). An InputError,
 * so the CLI still refuses it in one line; the admin API answers 409.
 */
export class ConflictError extends InputError {
  override name = 'ConflictError';
}

/** The thing named does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** Validates input against a schema; a mismatch is an InputError saying what to change. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const nul = findNul(input, []);
  if (nul) throw new InputError(describeIssues([{ path: nul, message: 'must not contain a NUL character' }]));
  const result = schema.safeParse(input);
  if (!result.success) throw new InputError(describeIssues(result.error.issues));
  return result.data;
}

/**
 * The path of the first string holding a NUL character (U+0000), searched through objects and arrays.
 * PostgreSQL cannot store one in text, so it is refused here by name rather than by the store as a 500.
 */
function findNul(value: unknown, path: PropertyKey[]): PropertyKey[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findNul(item, [...path, index]);
      if (found) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = findNul(item, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

/** Turns a zod error into one readable line per problem. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}
