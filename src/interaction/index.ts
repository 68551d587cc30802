/** Our pages: login, consent and abort routes, the provider's own pages in our look, and their stylesheet. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Middleware } from 'koa';
import compose from 'koa-compose';
import type { Logger } from '../logger.js';
import { type AccountDependencies, createAccountRoutes } from '../self-service/routes.js';
import type { ProviderPages } from '../oidc/provider.js';
import { errorPagesForBrowsers } from './errors.js';
import { createProviderPages as providerPages } from './provider-pages.js';
import { type InteractionDependencies, createInteractionRoutes as interactionRoutes } from './routes.js';
import { Views } from './views.js';

const SITE = { name: 'Sign in' };
let shared: Views | undefined;
const views = () => {
  shared ??= new Views(SITE);
  return shared;
};

export function createProviderPages(options: { logger: Logger }): ProviderPages {
  return providerPages(views(), options.logger);
}

/** A page, not JSON, for a browser whose request failed outside our pages' own error handling (./errors.ts). */
export function createBrowserErrorPages(options: { logger: Logger }): Middleware {
  return errorPagesForBrowsers(views(), options.logger);
}

/** The account page (src/self-service/), in the same look; only its own paths reach its router. */
export function createAccountPage(deps: Omit<AccountDependencies, 'views'>): Middleware {
  const page = createAccountRoutes({ ...deps, views: views() });
  return (ctx, next) => (ctx.path === '/account' || ctx.path.startsWith('/account/') ? page(ctx, next) : next());
}

export function createInteractionRoutes(deps: Omit<InteractionDependencies, 'views'>): Middleware {
  const pages = compose([stylesheet(views().dir), interactionRoutes({ ...deps, views: views() })]);
  // Every other request (tokens, introspection…) passes by without the router matching its path.
  return (ctx, next) => (ctx.path.startsWith('/interaction/') || ctx.path.startsWith('/assets/') ? pages(ctx, next) : next());
}

/** GET /assets/style.css: the one stylesheet the pages use (the CSP allows nothing else). */
function stylesheet(viewsDir: string): Middleware {
  let css: Promise<string> | undefined;
  return async (ctx, next) => {
    if (ctx.path !== '/assets/style.css' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    css ??= readFile(path.join(viewsDir, 'assets', 'style.css'), 'utf8');
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = await css;
  };
}
