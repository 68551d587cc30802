/**
 * Debian's headless Chromium, as every browser test drives it (playwright-core cannot download a browser here):
 * no sandbox (tests run as root), no GPU, and no background traffic of its own.
 */
import { type Browser, chromium } from 'playwright-core';

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
