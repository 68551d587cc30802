/**
 * What the consent page tells a person about an app that is not one of the server's own: where it lives and its
 * privacy policy and terms (client_uri, policy_uri, tos_uri, OpenID Connect Registration §2), and whether only
 * the app itself vouches for what it says: it registered without an administrator's initial access token, or it
 * is named by its own metadata document. Read from the registration (./tokens.ts) or the document
 * (./metadata-documents.ts); for an app an administrator registered, from its record (`clientUri`, …).
 *
 * The links were checked as web pages (http(s)) when the app registered, and are shown as links only: a logo
 * would be an image from the app's host, which the pages' Content-Security-Policy keeps out.
 */
import { webPage } from '../clients/app-links.js';
import type { Catalog } from '../oidc/catalog.js';
import type { ClientMetadataDocuments } from './metadata-documents.js';
import type { RegistrationTokens } from './tokens.js';

export interface AppDescription {
  homepage?: string;
  privacyPolicy?: string;
  termsOfService?: string;
  /** Registered openly, or by its own document: nobody here has looked at it. */
  selfDescribed: boolean;
}

export type AppDescriptions = (clientId: string) => Promise<AppDescription | undefined>;

/** A link as registration checked it (../clients/app-links.ts); anything else stored is not shown. */
const link = (value: unknown) => (webPage.safeParse(value).success ? (value as string) : undefined);

function described(description: Record<string, unknown>, selfDescribed: boolean): AppDescription {
  return {
    homepage: link(description.client_uri),
    privacyPolicy: link(description.policy_uri),
    termsOfService: link(description.tos_uri),
    selfDescribed,
  };
}

export function appDescriptions(catalog: Catalog, registrations: RegistrationTokens, documents?: ClientMetadataDocuments): AppDescriptions {
  return async (clientId) => {
    if (documents?.names(clientId)) {
      const description = await documents.description(clientId);
      return description && described(description, true);
    }
    const registration = await registrations.registrationOf(clientId);
    if (registration) return described(registration.description, registration.via === 'open');
    const client = await catalog.client(clientId);
    return client && described({ client_uri: client.clientUri, policy_uri: client.policyUri, tos_uri: client.tosUri }, false);
  };
}
