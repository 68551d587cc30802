/**
 * Errors of our pages: a status and a sentence the person in front of the browser can act on. Our own routes
 * turn what they throw into such a page (`pageErrors`), and so does every other request a browser makes
 * (`errorPagesForBrowsers`): a person never reads the JSON an API client gets.
 */
import type { Context, Middleware } from 'koa';
import type { Logger } from '../logger.js';
import { OUTAGE_PAGE_MESSAGE, isStoreOutage, isUnstorableText, logRefusedForOutage } from '../store/outages.js';
import type { Views } from './views.js';

/** A way forward the error page offers: a link and what it says. */
export interface PageAction {
  href: string;
  label: string;
}

export class PageError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly action?: PageAction,
  ) {
    super(message);
  }
}

export interface ErrorPage {
  status: number;
  message: string;
  /** The OAuth error code, when the page reports one. */
  code?: string;
  action?: PageAction;
}

export function renderErrorPage(views: Views, ctx: Context, page: ErrorPage): void {
  views.render(ctx, 'error.njk', { message: page.message, code: page.code, action: page.action, requestId: ctx.state.requestId }, page.status);
}

/** The page for anything thrown: our PageErrors as they are, an outage as 503, the unexpected as a bare 500. */
export function toErrorPage(error: unknown): ErrorPage {
  if (error instanceof PageError) return { status: error.status, message: error.message, action: error.action };
  if (isUnstorableText(error)) return { status: 400, message: 'A value you sent contains a character that is not allowed (NUL).' };
  const name = (error as { name?: string }).name;
  // oidc-provider's answers for an interaction that has ended or belongs to another browser.
  if (name === 'SessionNotFound' || name === 'InvalidRequest' || name === 'AccessDenied') {
    return { status: 400, message: 'This sign-in has expired or was already completed. Go back to the application and start again.' };
  }
  const { status, expose, message } = error as { status?: number; expose?: boolean; message?: string };
  if (status && status >= 400 && status < 500 && expose) return { status, message: message ?? 'The request was not valid.' };
  if (isStoreOutage(error)) return { status: 503, message: OUTAGE_PAGE_MESSAGE, code: 'temporarily_unavailable' };
  return { status: 500, message: 'Something went wrong on our side. Please try again in a moment.' };
}

/** Logs what the page does not say (an outage at warn, anything unexpected in full) and renders the page. */
function renderFailure(views: Views, logger: Logger, ctx: Context, error: unknown): void {
  const page = toErrorPage(error);
  if (page.status === 503) logRefusedForOutage(logger, ctx.state.requestId, error);
  else if (page.status >= 500) logger.error({ err: error, requestId: ctx.state.requestId }, 'page failed');
  renderErrorPage(views, ctx, page);
}

/** Turns anything thrown below into an HTML page with a reason; unexpected errors are logged, never shown. */
export function pageErrors(views: Views, logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      renderFailure(views, logger, ctx, error);
    }
  };
}

/**
 * The same for a browser anywhere else. The provider renders its own errors as pages (./provider-pages.ts), but
 * not what fails around its routes: a session it cannot save once the page is written (GET /device or
 * /session/end while Redis is away), or the device-code guard's lock check. Those reach the last-resort handler
 * (src/http/request-context.ts), which answers JSON. A browser is told apart as oidc-provider tells it: it
 * prefers HTML to JSON; API clients (no Accept, `*\/*` or JSON) still get the JSON.
 */
export function errorPagesForBrowsers(views: Views, logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (ctx.accepts('json', 'html') !== 'html') throw error;
      renderFailure(views, logger, ctx, error);
    }
  };
}
