/**
 * Page rendering: nunjucks templates from views/ with auto-escaping on, so nothing a user or client typed
 * (names, emails, error descriptions) can become markup. Pages are never cached: they carry CSRF tokens and
 * who is signed in. A deployment's theme (THEME_DIR, ./theme.ts) is looked in first.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import nunjucks from 'nunjucks';
import { DEFAULT_MIN_PASSWORD_LENGTH } from '../accounts/password-policy.js';
import { EMPTY_THEME, type Theme, readTheme } from './theme.js';

/** views/ beside src/ (running from source) or beside dist/ (running the build). */
export function findViewsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++) {
    const candidate = path.join(dir, 'views');
    if (existsSync(path.join(candidate, 'layout.njk'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('views/ not found next to the application');
}

const SITE = { name: 'Sign in' };

export class Views {
  readonly dir = findViewsDir();
  /** The deployment's theme; without THEME_DIR, one with nothing in it. */
  readonly theme: Theme;
  readonly #env: nunjucks.Environment;
  /** PASSWORD_MIN_LENGTH, for the new-password fields' `minlength` (the server checks it again). */
  readonly #passwordMinLength: number;

  /** `themeDir` was checked when the configuration was loaded (config.ts), so its templates are not compiled again. */
  constructor(options: { themeDir?: string; passwordMinLength?: number } = {}) {
    this.theme = options.themeDir ? readTheme(options.themeDir) : EMPTY_THEME;
    this.#passwordMinLength = options.passwordMinLength ?? DEFAULT_MIN_PASSWORD_LENGTH;
    const dirs = options.themeDir ? [options.themeDir, this.dir] : [this.dir];
    this.#env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dirs, { noCache: false }), { autoescape: true, throwOnUndefined: false });
  }

  render(ctx: Context, template: string, variables: Record<string, unknown>, status = 200): void {
    const html = this.#env.render(template, { site: SITE, theme: this.theme.has, passwordMinLength: this.#passwordMinLength, ...variables });
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    ctx.body = html;
  }
}
