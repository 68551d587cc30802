/**
 * Terms of service (TERMS_URL, TERMS_VERSION; Keycloak's "Terms and Conditions" required action): after the login,
 * an account that has not accepted this version of the terms is held at "Terms of service"
 * (src/interaction/terms.ts) until it accepts them, or declines and goes back to the app with `access_denied`.
 * Checked on every authorization, so a new version asks sessions already open too; `prompt=none` gets
 * `interaction_required`. New accounts accept them as they register.
 */
import { type KoaContextWithOIDC, interactionPolicy } from 'oidc-provider';

/** The prompt's name, which our interaction routes answer. */
export const TERMS_PROMPT = 'accept_terms';

/** Set on the account object by src/oidc/accounts.ts: the version accepted, or null. */
const acceptedVersion = (ctx: KoaContextWithOIDC) => (ctx.oidc.account as { termsAcceptedVersion?: string | null } | undefined)?.termsAcceptedVersion;

export function termsPrompt(version: string) {
  return new interactionPolicy.Prompt(
    { name: TERMS_PROMPT, requestable: false },
    new interactionPolicy.Check('terms_not_accepted', 'the account has not accepted this version of the terms of service', async (ctx) =>
      Boolean(ctx.oidc.account) && acceptedVersion(ctx) !== version,
    ),
  );
}
