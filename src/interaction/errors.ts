/** Errors of our pages: a status and a sentence the person in front of the browser can act on. */
import type { Context } from 'koa';
import type { Views } from './views.js';

export class PageError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorPage {
  status: number;
  message: string;
  /** The OAuth error code, when the page reports one. */
  code?: string;
}

export function renderErrorPage(views: Views, ctx: Context, page: ErrorPage): void {
  views.render(ctx, 'error.njk', { message: page.message, code: page.code, requestId: ctx.state.requestId }, page.status);
}
