/**
 * A deployment's theme as an operator would write one (THEME_DIR, src/interaction/theme.ts): a stylesheet and a
 * logo put in every page, its own error page, and a password-reset subject of its own.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';

const chunk = (type: string, data: Buffer) => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
};

/** A 2×1 RGB PNG, one green pixel and one blue: binary, so a test can tell the bytes came through whole. */
function twoPixelPng(): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(2, 0); // width
  header.writeUInt32BE(1, 4); // height
  header.set([8, 2, 0, 0, 0], 8); // 8 bits a channel, RGB, deflate, no filter method, no interlace
  const row = Buffer.from([0, 0x00, 0xaa, 0x55, 0x00, 0x55, 0xaa]); // filter "none", then the two pixels
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', deflateSync(row)), chunk('IEND', Buffer.alloc(0))]);
}

export const LOGO_PNG = twoPixelPng();

export const BRAND_CSS = '.brand { text-align: center; }\n.brand img { width: 64px; height: 32px; image-rendering: pixelated; }\n';

export async function writeExampleTheme(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'theme-'));
  await mkdir(path.join(dir, 'assets'));
  await mkdir(path.join(dir, 'mail'));
  await writeFile(path.join(dir, 'theme-head.njk'), '<link rel="stylesheet" href="/assets/brand.css">\n');
  await writeFile(path.join(dir, 'theme-header.njk'), '<header class="brand"><img src="/assets/logo.png" alt="Example Corp"></header>\n');
  await writeFile(
    path.join(dir, 'error.njk'),
    '{% extends "layout.njk" %}{% block content %}<h1>Example Corp could not go on</h1><p class="message">{{ message }}</p><p>Code: {{ code }}</p>{% endblock %}\n',
  );
  await writeFile(path.join(dir, 'assets', 'brand.css'), BRAND_CSS);
  await writeFile(path.join(dir, 'assets', 'logo.png'), LOGO_PNG);
  await writeFile(path.join(dir, 'mail', 'password-reset.subject.njk'), 'Example Corp: a new password for {{ to }}');
  return dir;
}
