/**
 * A deployment's own look (THEME_DIR), as Keycloak's themes give one: a folder whose page templates are used
 * before ours in views/, and whose assets/ files are served at /assets/<name> before ours.
 *
 *   THEME_DIR/
 *     theme-head.njk     put in every page's <head>, after our stylesheet (a stylesheet of its own, a favicon)
 *     theme-header.njk   put above every page's card (a logo, the organisation's name)
 *     login.njk, …       any page of views/ by its name, replacing ours
 *     assets/            logo.svg, brand.css, …: served at /assets/logo.svg, …; style.css here replaces ours
 *     mail/              the mail templates, when MAIL_TEMPLATES_DIR is not set
 *
 * The folder is read once at start: its templates must compile (nunjucks, auto-escaped like ours) and its assets be
 * of a type we serve, or the server refuses to start and names the file, rather than answering 500 on the login page.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import nunjucks from 'nunjucks';

/** What the theme's assets may be, by extension: stylesheets, scripts, images and fonts. */
const ASSET_TYPES: Readonly<Record<string, string>> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
};

/** Names a URL path can carry as they are: no folders, nothing a browser or a proxy would rewrite. */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface ThemeAsset {
  file: string;
  type: string;
}

export interface Theme {
  /** The partials our layout puts in, when the theme has them. */
  has: { head: boolean; header: boolean };
  /** By URL path (`/assets/logo.svg`). */
  assets: Map<string, ThemeAsset>;
}

const files = (dir: string) => {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => entry.name);
  } catch {
    return [];
  }
};

const isFolder = (dir: string) => {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
};

const assetType = (name: string): string | undefined => ASSET_TYPES[path.extname(name).toLowerCase()];
const templatesIn = (dir: string) => files(dir).filter((name) => name.endsWith('.njk'));

/** The files of THEME_DIR/assets the pages serve, and a sentence for each they cannot. */
function assetsIn(dir: string): { assets: Map<string, ThemeAsset>; problems: string[] } {
  const assets = new Map<string, ThemeAsset>();
  const problems: string[] = [];
  for (const name of files(path.join(dir, 'assets'))) {
    const type = assetType(name);
    if (!ASSET_NAME.test(name)) problems.push(`THEME_DIR/assets/${name}: name it with letters, digits, '.', '_' and '-' only`);
    else if (!type) problems.push(`THEME_DIR/assets/${name}: not a type the pages serve (${Object.keys(ASSET_TYPES).join(' ')})`);
    else assets.set(`/assets/${name}`, { file: path.join(dir, 'assets', name), type });
  }
  return { assets, problems };
}

/** What keeps THEME_DIR from being used, one sentence a file; checked once, when the configuration is loaded. */
export function themeProblems(dir: string): string[] {
  if (!isFolder(dir)) return [`THEME_DIR: there is no folder at ${dir}`];
  return [...templateProblems(dir, templatesIn(dir)), ...assetsIn(dir).problems];
}

/** THEME_DIR as the pages use it (checked already: ./themeProblems). */
export function readTheme(dir: string): Theme {
  const templates = templatesIn(dir);
  return { has: { head: templates.includes('theme-head.njk'), header: templates.includes('theme-header.njk') }, assets: assetsIn(dir).assets };
}

export const EMPTY_THEME: Theme = { has: { head: false, header: false }, assets: new Map() };

/** Compiles each template now: a syntax error found at start names its file; found at a sign-in it would be a 500. */
function templateProblems(dir: string, templates: string[]): string[] {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), { autoescape: true });
  const problems: string[] = [];
  for (const name of templates) {
    try {
      env.getTemplate(name, true);
    } catch (error) {
      // nunjucks puts "(unknown path)" and the file's full path in front of its message; the file is named here.
      const reason = (error as Error).message.replace(/^\([^)]*\)\s*/, '').replace(/\s+/g, ' ').trim();
      problems.push(`THEME_DIR/${name}: ${reason}`);
    }
  }
  return problems;
}
