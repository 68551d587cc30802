#!/usr/bin/env node
// `npx authz …`: runs the TypeScript source through tsx in a checkout, or the compiled CLI in a built image.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/cli.js', import.meta.url).href);
}
