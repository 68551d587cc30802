/** Our pages: login, consent and abort routes, the provider's own pages in our look, and their assets. */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
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
  const pages = compose([assets(views().dir), interactionRoutes({ ...deps, views: views() })]);
  // Every other request (tokens, introspection…) passes by without the router matching its path.
  return (ctx, next) => (ctx.path.startsWith('/interaction/') || ctx.path.startsWith('/assets/') ? pages(ctx, next) : next());
}

/**
 * GET /assets/…: the one stylesheet the pages use, the passkey script, and @simplewebauthn/browser's bundle that
 * script calls (the CSP allows scripts from this origin only, so it is served from here, not a CDN).
 */
function assets(viewsDir: string): Middleware {
  const files = new Map<string, { file: string; type: string }>([
    ['/assets/style.css', { file: path.join(viewsDir, 'assets', 'style.css'), type: 'text/css' }],
    ['/assets/passkeys.js', { file: path.join(viewsDir, 'assets', 'passkeys.js'), type: 'text/javascript' }],
    ['/assets/webauthn.js', { file: webauthnBundle(), type: 'text/javascript' }],
  ]);
  const read = new Map<string, Promise<string>>();
  return async (ctx, next) => {
    const asset = files.get(ctx.path);
    if (!asset || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    if (!read.has(ctx.path)) read.set(ctx.path, readFile(asset.file, 'utf8'));
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = await read.get(ctx.path);
  };
}

/** The browser bundle of @simplewebauthn/browser (it defines `SimpleWebAuthnBrowser`), found beside its package. */
function webauthnBundle(): string {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}script${path.sep}`)), 'dist', 'bundle', 'index.umd.min.js');
}
