/**
 * `prompt=create` (Initiating User Registration via OpenID Connect 1.0): an app sends a person straight to the
 * registration page, where people may create accounts (REGISTRATION=open); discovery then lists `create` in
 * `prompt_values_supported`, and elsewhere the request is refused as an unsupported prompt. The step is the
 * login's, begun at the registration page, whose "I have an account" leads to the login page
 * (src/interaction/routes.ts); whatever signs the person in answers it.
 */
import { interactionPolicy } from 'oidc-provider';

/** The prompt's name, which our interaction routes answer. */
export const CREATE_PROMPT = 'create';

/** Requestable only: asked for by the app, never by a check of ours. */
export function createPrompt() {
  return new interactionPolicy.Prompt({ name: CREATE_PROMPT, requestable: true });
}
