/**
 * A way back into a sign-in that has ended. oidc-provider keeps an interaction for an hour and forgets it once it
 * is done, after which its page can only say it is gone. A person who left the login form open over lunch, or who
 * pressed Back from the app, deserves better: "Start again" (Keycloak keeps the request in its KC_RESTART
 * cookie for the same reason) or "you are already signed in".
 *
 * When a sign-in's page is shown, the browser is given a signed, HttpOnly cookie holding that interaction's uid and
 * its authorization parameters (nothing secret: they were in the browser's own address bar). When the step is
 * finished, the cookie is marked with how it ended. When an interaction cannot be found any more, the cookie
 * tells which of the two happened, and for an expired one, the request to send again.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const COOKIE = 'signin.restart';
/** Cookies larger than about 4 KB are dropped by browsers; a request this large is not kept (no link offered). */
const MAX_COOKIE_CHARS = 3000;

export type SignInEnd = 'done' | 'cancelled';

const remembered = z.object({
  uid: z.string(),
  /** Name and value pairs: `resource` may be given more than once. */
  params: z.array(z.tuple([z.string(), z.string()])),
  ended: z.enum(['done', 'cancelled']).optional(),
});
type RememberedSignIn = z.infer<typeof remembered>;

/** What the browser's cookie says of the interaction `uid`: its request, and how it ended if it did. */
export interface EndedSignIn {
  clientId: string;
  /** The authorization request to send again, as a path on this server. */
  restartPath: string;
  ended?: SignInEnd;
}

const cookieOptions = (ctx: Context) => ({
  signed: true,
  httpOnly: true,
  sameSite: 'lax' as const,
  secure: ctx.secure,
  // Only our pages read it; the browser sends it nowhere else.
  path: '/interaction/',
  overwrite: true,
});

function write(ctx: Context, value: RememberedSignIn): void {
  const encoded = Buffer.from(JSON.stringify(value)).toString('base64url');
  if (encoded.length > MAX_COOKIE_CHARS) {
    ctx.cookies.set(COOKIE, null, cookieOptions(ctx));
    return;
  }
  ctx.cookies.set(COOKIE, encoded, cookieOptions(ctx));
}

function read(ctx: Context): RememberedSignIn | undefined {
  const encoded = ctx.cookies.get(COOKIE, { signed: true });
  if (!encoded) return undefined;
  try {
    const parsed = remembered.safeParse(JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps this interaction's request in the browser, for a link to start again should it expire. */
export function rememberSignIn(ctx: Context, details: Interaction): void {
  const params: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(details.params)) {
    for (const one of Array.isArray(value) ? value : [value]) if (typeof one === 'string') params.push([name, one]);
  }
  write(ctx, { uid: details.uid, params });
}

/** Marks the browser's remembered sign-in as finished, so that coming back to it says so instead of restarting. */
export function markSignInEnded(ctx: Context, uid: string, ended: SignInEnd): void {
  const current = read(ctx);
  if (current?.uid === uid) write(ctx, { ...current, ended });
}

/** The browser's remembered sign-in `uid`, when its cookie holds that one (the latest sign-in it was shown). */
export function endedSignIn(ctx: Context, uid: string, authorizationPath: string): EndedSignIn | undefined {
  const current = read(ctx);
  const clientId = current?.params.find(([name]) => name === 'client_id')?.[1];
  if (current?.uid !== uid || !clientId) return undefined;
  return {
    clientId,
    restartPath: `${authorizationPath}?${new URLSearchParams(current.params)}`,
    ended: current.ended,
  };
}
