/** Our pages: login, consent and abort routes, the provider's own pages in our look, and their assets. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Middleware } from 'koa';
import compose from 'koa-compose';
import type { Logger } from '../logger.js';
import { type AccountDependencies, createAccountRoutes } from '../self-service/routes.js';
import type { ProviderPages } from '../oidc/provider.js';
import { errorPagesForBrowsers } from './errors.js';
import { federationCallback } from './federated-sign-in.js';
import { createProviderPages as providerPages } from './provider-pages.js';
import { type InteractionDependencies, createInteractionRoutes as interactionRoutes } from './routes.js';
import type { ThemeAsset } from './theme.js';
import { Views } from './views.js';

/** The pages' templates, with the deployment's theme (THEME_DIR) in front: one set for each server. */
export function createViews(config: { themeDir?: string; passwords: { minLength: number } }): Views {
  return new Views({ themeDir: config.themeDir, passwordMinLength: config.passwords.minLength });
}

export function createProviderPages(options: { views: Views; logger: Logger }): ProviderPages {
  return providerPages(options.views, options.logger);
}

/** A page, not JSON, for a browser whose request failed outside our pages' own error handling (./errors.ts). */
export function createBrowserErrorPages(options: { views: Views; logger: Logger }): Middleware {
  return errorPagesForBrowsers(options.views, options.logger);
}

/** The account page (src/self-service/), in the same look; only its own paths reach its router. */
export function createAccountPage(deps: AccountDependencies): Middleware {
  const page = createAccountRoutes(deps);
  return (ctx, next) => (ctx.path === '/account' || ctx.path.startsWith('/account/') ? page(ctx, next) : next());
}

export function createInteractionRoutes(deps: InteractionDependencies): Middleware {
  const pages = compose([assets(deps.views), federationCallback(), interactionRoutes(deps)]);
  // Every other request (tokens, introspection…) passes by without the router matching its path.
  const ours = (path: string) => path.startsWith('/interaction/') || path.startsWith('/assets/') || path.startsWith('/federation/');
  return (ctx, next) => (ours(ctx.path) ? pages(ctx, next) : next());
}

/**
 * GET /assets/…: the theme's files first (./theme.ts), then ours: the stylesheet, the passkey script, and
 * @simplewebauthn/browser's bundle that script calls (the CSP allows scripts from this origin only, so it is served
 * from here, not a CDN). Each file is read once; its ETag lets a browser revalidate after the hour it may keep it.
 */
function assets(views: Views): Middleware {
  const files = new Map<string, ThemeAsset>([
    ['/assets/style.css', { file: path.join(views.dir, 'assets', 'style.css'), type: 'text/css; charset=utf-8' }],
    ['/assets/passkeys.js', { file: path.join(views.dir, 'assets', 'passkeys.js'), type: 'text/javascript; charset=utf-8' }],
    ['/assets/webauthn.js', { file: webauthnBundle(), type: 'text/javascript; charset=utf-8' }],
    ...views.theme.assets,
  ]);
  const read = new Map<string, Promise<LoadedAsset | undefined>>();
  return async (ctx, next) => {
    const asset = files.get(ctx.path);
    if (!asset || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    if (!read.has(ctx.path)) read.set(ctx.path, loadAsset(asset.file));
    const loaded = await read.get(ctx.path);
    if (!loaded) {
      // Gone since start (a theme edited in place): a 404 now, and read again when next asked for.
      read.delete(ctx.path);
      return next();
    }
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.etag = loaded.etag;
    ctx.status = 200;
    if (ctx.fresh) ctx.status = 304;
    else ctx.body = loaded.body;
  };
}

interface LoadedAsset {
  body: Buffer;
  etag: string;
}

const loadAsset = (file: string): Promise<LoadedAsset | undefined> =>
  readFile(file).then(
    (body) => ({ body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }),
    () => undefined,
  );

/** The browser bundle of @simplewebauthn/browser (it defines `SimpleWebAuthnBrowser`), found beside its package. */
function webauthnBundle(): string {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}script${path.sep}`)), 'dist', 'bundle', 'index.umd.min.js');
}
