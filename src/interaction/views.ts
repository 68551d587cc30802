/**
 * Page rendering: nunjucks templates from views/ with auto-escaping on, so nothing a user or client typed
 * (names, emails, error descriptions) can become markup. Pages are never cached: they carry CSRF tokens and
 * who is signed in.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import nunjucks from 'nunjucks';

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

export class Views {
  readonly dir = findViewsDir();
  readonly #env = new nunjucks.Environment(new nunjucks.FileSystemLoader(this.dir, { noCache: false }), {
    autoescape: true,
    throwOnUndefined: false,
  });

  constructor(private readonly site: { name: string }) {}

  render(ctx: Context, template: string, variables: Record<string, unknown>, status = 200): void {
    const html = this.#env.render(template, { site: this.site, ...variables });
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    ctx.body = html;
  }
}
