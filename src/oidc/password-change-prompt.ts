/**
 * A temporary password (an administrator's `--temporary`, or an account asked to change it): after the login and
 * before anything else, the signed-in account is held at "Choose a new password" (src/interaction/password-change.ts)
 * until it has chosen one, as at Keycloak's "Update Password" required action. Checked on every authorization, so
 * a session that was open when the change was asked for is held too; `prompt=none` gets `interaction_required`.
 */
import { type KoaContextWithOIDC, interactionPolicy } from 'oidc-provider';

/** The prompt's name, which our interaction routes answer. */
export const PASSWORD_CHANGE_PROMPT = 'update_password';

/** Set on the account object by src/oidc/accounts.ts. */
export const mustChangePassword = (ctx: KoaContextWithOIDC) =>
  (ctx.oidc.account as { passwordChangeRequired?: boolean } | undefined)?.passwordChangeRequired === true;

export function passwordChangePrompt() {
  return new interactionPolicy.Prompt(
    { name: PASSWORD_CHANGE_PROMPT, requestable: false },
    new interactionPolicy.Check('password_change_required', 'the account must choose a new password', async (ctx) => mustChangePassword(ctx)),
  );
}
