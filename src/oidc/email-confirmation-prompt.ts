/**
 * EMAIL_CONFIRMATION_REQUIRED: after the login and before consent, a signed-in account whose address is not
 * confirmed is held at our page (src/interaction/email-confirmation.ts) until it is. Checked on every
 * authorization, so a session that signed in before the setting was turned on is held too; `prompt=none` gets
 * `interaction_required`.
 */
import { interactionPolicy } from 'oidc-provider';

/** The prompt's name, which our interaction routes answer. */
export const CONFIRM_EMAIL_PROMPT = 'confirm_email';

export function emailConfirmationPrompt() {
  return new interactionPolicy.Prompt(
    { name: CONFIRM_EMAIL_PROMPT, requestable: false },
    new interactionPolicy.Check('email_unconfirmed', 'the account has not confirmed its email address', async (ctx) => {
      const claims = ctx.oidc.account && (await ctx.oidc.account.claims('id_token', 'email', {}, []));
      return claims?.email_verified === false;
    }),
  );
}
