/**
 * A way back into a sign-in that has ended. oidc-provider keeps an interaction for an hour and forgets it once it
 * is done, after which its page can only say it is gone. A person who left the login form open over lunch, or who
 * pressed Back from the app, deserves better: "Start again" (Keycloak keeps the request in its KC_RESTART
 * cookie for the same reason) or "you are already signed in".
 *
 * When a sign-in's page is shown, the browser is given a signed, HttpOnly cookie holding that interaction's uid,
 * its client and the authorization request that began it (nothing secret: it was in the browser's own address
 * bar). When the step is finished, the cookie is marked with how it ended. When an interaction cannot be found
 * any more, the cookie tells which of the two happened, and for an expired one, the request to send again.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const COOKIE = 'signin.restart';
/** Cookies larger than about 4 KB are dropped by browsers; a request this large is not kept (no link offered). */
const MAX_COOKIE_CHARS = 3000;

const rememberedSignIn = z.object({
  uid: z.string(),
  clientId: z.string(),
  /** The authorization request to send again, as a path on this server; absent for the device flow's sign-ins. */
  restartPath: z.string().startsWith('/').optional(),
  ended: z.enum(['done', 'cancelled']).optional(),
});

/** What the browser's cookie says of one of its sign-ins: its client, its request, how it ended if it did. */
export type RememberedSignIn = z.infer<typeof rememberedSignIn>;
export type SignInEnd = NonNullable<RememberedSignIn['ended']>;

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
  ctx.cookies.set(COOKIE, encoded.length > MAX_COOKIE_CHARS ? null : encoded, cookieOptions(ctx));
}

function read(ctx: Context): RememberedSignIn | undefined {
  const encoded = ctx.cookies.get(COOKIE, { signed: true });
  if (!encoded) return undefined;
  try {
    const parsed = rememberedSignIn.safeParse(JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The interaction's authorization request as a path on this server. Its parameters as oidc-provider read them,
 * `resource` possibly several times; undefined for a device-flow sign-in, which began on the device, not here.
 */
export function restartPathOf(provider: Provider, details: Interaction): string | undefined {
  if (URL.parse(details.returnTo)?.pathname !== provider.pathFor('resume', { uid: details.uid })) return undefined;
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(details.params)) {
    for (const one of Array.isArray(value) ? value : [value]) if (typeof one === 'string') query.append(name, one);
  }
  return `${provider.pathFor('authorization')}?${query}`;
}

/** Keeps this interaction's client and request in the browser, for a way back should it expire. */
export function rememberSignIn(ctx: Context, details: Interaction, restartPath: string | undefined): void {
  write(ctx, { uid: details.uid, clientId: String(details.params.client_id), restartPath });
}

/** Marks the browser's remembered sign-in as finished, so that coming back to it says so instead of restarting. */
export function markSignInEnded(ctx: Context, uid: string, ended: SignInEnd): void {
  const current = read(ctx);
  if (current?.uid === uid) write(ctx, { ...current, ended });
}

/** The browser's remembered sign-in `uid`, when its cookie holds that one (the latest sign-in it was shown). */
export function rememberedSignInOf(ctx: Context, uid: string): RememberedSignIn | undefined {
  const current = read(ctx);
  return current?.uid === uid ? current : undefined;
}
