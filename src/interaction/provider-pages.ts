/**
 * The pages oidc-provider renders itself, in our look: its error page (errors it cannot send back to a client,
 * such as an unregistered redirect_uri), the logout confirmation, the signed-out page and the device flow's
 * pages (./device-pages.ts).
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../logger.js';
import type { ProviderPages } from '../oidc/provider.js';
import { OUTAGE_PAGE_MESSAGE, isStoreOutage, logRefusedForOutage } from '../store/outages.js';
import { createDeviceFlowPages } from './device-pages.js';
import { renderErrorPage } from './errors.js';
import type { Views } from './views.js';

const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc?.client?.clientName ?? ctx.oidc?.client?.clientId;

export function createProviderPages(views: Views, logger: Logger): ProviderPages {
  return {
    async renderError(ctx, out, error) {
      if (isStoreOutage(error)) {
        logRefusedForOutage(logger, ctx.state?.requestId, error);
        renderErrorPage(views, ctx, { status: 503, code: 'temporarily_unavailable', message: OUTAGE_PAGE_MESSAGE });
        return;
      }
      const status = Math.max(ctx.status, 400);
      if (status >= 500) logger.error({ err: error, requestId: ctx.state?.requestId }, 'provider error page');
      const description = status >= 500 ? 'Something went wrong on our side. Please try again in a moment.' : out.error_description;
      renderErrorPage(views, ctx, { status, code: out.error, message: description ?? 'The request was not valid.' });
    },
    async logoutSource(ctx, form) {
      // `form` is oidc-provider's own markup (its action and an xsrf field, values escaped by the library).
      // The server is named by its issuer's host (as apps link to it), not by whatever Host the request carried.
      views.render(ctx, 'logout.njk', { form, client: clientName(ctx), host: new URL(ctx.oidc.provider.issuer).host });
    },
    async postLogoutSuccessSource(ctx) {
      views.render(ctx, 'logged-out.njk', { client: clientName(ctx) });
    },
    deviceFlow: createDeviceFlowPages(views, logger),
  };
}
