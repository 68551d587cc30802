/**
 * Debian's headless Chromium, as every browser test drives it (playwright-core cannot download a browser here):
 * no sandbox (tests run as root), no GPU, and no background traffic of its own.
 */
import { type Browser, type BrowserContext, type CDPSession, type Page, chromium } from 'playwright-core';

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });

/**
 * Chromium's virtual platform authenticator on `page` (the DevTools protocol's WebAuthn domain): it holds
 * discoverable credentials and verifies its user (a fingerprint, say), answering at once.
 */
export async function addVirtualAuthenticator(context: BrowserContext, page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticatorId };
}

/** Console errors of `page` that say the Content Security Policy refused something, collected as they come. */
export function cspErrorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /content security policy|refused to/i.test(message.text())) errors.push(message.text());
  });
  return errors;
}
