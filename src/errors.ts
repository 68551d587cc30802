/**
 * Errors that carry a reason a user can act on. The HTTP layer turns them into 4xx responses and the CLI into a
 * one-line message with a non-zero exit; anything else is a bug and is logged, never shown.
 */

/** The input was wrong: the message says what to change. */
export class InputError extends Error {
  override name = 'InputError';
}

/** The thing named does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** Turns a zod error into one readable line per problem. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}
