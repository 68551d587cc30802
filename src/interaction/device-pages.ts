/**
 * The pages of the device authorization grant (RFC 8628) in our look: where a person types the code a TV or a
 * command-line tool shows them, the confirmation that names the app and where its request came from, and the
 * page that says the device is signed in. Between confirmation and success the person signs in and consents on
 * our usual login and consent pages.
 *
 * oidc-provider calls these hooks with its own form markup, which carries an inline event handler our CSP refuses;
 * the templates write their own forms with the same fields (the session-bound `xsrf` secret the library checks).
 */
import type { Client, KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../logger.js';
import type { DeviceFlowPages } from '../oidc/provider.js';
import { isStoreOutage, logRefusedForOutage, OUTAGE_PAGE_MESSAGE } from '../store/outages.js';
import { describeWait } from '../security/failure-limiter.js';
import { renderErrorPage } from './errors.js';
import type { Views } from './views.js';

/** What went wrong with a code a person entered, as the guard against guessing (src/security/user-code-guard.ts) reads it. */
export type UserCodeProblem = 'missing' | 'unknown' | 'expired' | 'used' | 'cancelled' | 'stale_form' | 'ended' | 'unavailable' | 'failed';

/** The entry page's message for each problem, and its status. */
const PROBLEMS: Record<UserCodeProblem, { message: string; status: number }> = {
  missing: { message: 'Enter the code your device shows.', status: 400 },
  // Also a code that expired a while ago: its record is gone with its lifetime (plus the clock tolerance), and
  // what is gone cannot be told apart from a guess.
  unknown: { message: 'That code is not right, or it has expired. Check the code on your device, or start again there to get a new one.', status: 400 },
  expired: { message: 'That code has expired. Start again on your device to get a new one.', status: 400 },
  used: { message: 'That code was already used. Start again on your device to get a new one.', status: 400 },
  cancelled: { message: 'The sign-in was cancelled, and your device was told so. You can close this window.', status: 200 },
  stale_form: { message: 'The form expired. Enter the code again.', status: 400 },
  ended: { message: 'This sign-in has expired or was already completed. Enter the code from your device again.', status: 400 },
  unavailable: { message: OUTAGE_PAGE_MESSAGE, status: 503 },
  failed: { message: 'Something went wrong on our side. Please try again in a moment.', status: 500 },
};

/** oidc-provider's re-render errors by name (lib/helpers/re_render_errors.js), and its form check's. */
function problemOf(error: Error): UserCodeProblem {
  switch (error.name) {
    case 'NoCodeError':
      return 'missing';
    case 'NotFoundError':
      return 'unknown';
    case 'ExpiredError':
      return 'expired';
    case 'AlreadyUsedError':
      return 'used';
    case 'AbortedError':
      return 'cancelled';
    case 'InvalidRequest':
      return 'stale_form';
  }
  if (isStoreOutage(error)) return 'unavailable';
  // Another refusal of the library's (an unknown or finished interaction at /device/<uid>): the person's request, not our fault.
  const { status, expose } = error as { status?: number; expose?: boolean };
  return expose && status !== undefined && status < 500 ? 'ended' : 'failed';
}

const formFields = (ctx: KoaContextWithOIDC) => ({
  action: ctx.oidc.urlFor('code_verification'),
  // Set by oidc-provider on the session just before it renders either page.
  xsrf: (ctx.oidc.session?.state as { secret?: string } | undefined)?.secret ?? '',
});

/**
 * A code posted without a session (no cookie, or one whose session has ended) fails oidc-provider's form check,
 * and its error handler then gives that never-saved session a new form secret, which the library's last step
 * cannot save ("persist can only be called on previously persisted Sessions": a 500). Such a page leaves the
 * session alone and asks for the code with a GET form instead: GET /device?user_code=… starts a session of its
 * own and relays the code on (oidc-provider's self-submitting form), so pressing Continue still works.
 */
function withoutSession(ctx: KoaContextWithOIDC, error: Error | undefined): boolean {
  const session = ctx.oidc.session as (typeof ctx.oidc.session & { touched?: boolean; exp?: number }) | undefined;
  if (!error || !session || typeof session.exp === 'number') return false;
  session.touched = false;
  return true;
}

const clientName = (client: Client | undefined) => client?.clientName ?? client?.clientId ?? 'the app';

export function createDeviceFlowPages(views: Views, logger: Logger): DeviceFlowPages {
  return {
    async userCodeInputSource(ctx, _form, _out, error) {
      const problem = error ? problemOf(error) : undefined;
      ctx.state.userCodeProblem = problem;
      if (problem === 'unavailable') logRefusedForOutage(logger, ctx.state.requestId, error);
      if (problem === 'failed') logger.error({ err: error, requestId: ctx.state.requestId }, 'device code entry failed');
      const shown = problem ? PROBLEMS[problem] : undefined;
      // A code is shown again after a mistake (the person may have mistyped one character), never after success.
      const typed = problem === 'unknown' || problem === 'stale_form' ? ctx.oidc.params?.user_code : undefined;
      const code = typeof typed === 'string' ? typed : undefined;
      const form = formFields(ctx);
      const fields = withoutSession(ctx, error) ? { action: form.action, method: 'get' } : { ...form, method: 'post' };
      views.render(ctx, 'device.njk', { ...fields, code, error: shown?.message, cancelled: problem === 'cancelled' }, shown?.status ?? 200);
    },

    async userCodeConfirmSource(ctx, _form, client, deviceInfo, userCode) {
      views.render(ctx, 'device-confirm.njk', {
        ...formFields(ctx),
        client: clientName(client),
        userCode,
        requestedFrom: typeof deviceInfo?.ip === 'string' ? deviceInfo.ip : undefined,
        userAgent: typeof deviceInfo?.ua === 'string' ? deviceInfo.ua : undefined,
      });
    },

    async successSource(ctx) {
      views.render(ctx, 'device-done.njk', { client: clientName(ctx.oidc.client) });
    },

    tooManyGuesses(ctx, waitMs) {
      ctx.set('Retry-After', String(Math.ceil(waitMs / 1000)));
      renderErrorPage(views, ctx, {
        status: 429,
        message: `Too many wrong codes or passwords were entered from your network. Try again in ${describeWait(waitMs)}.`,
      });
    },
  };
}
