/**
 * What a sign-in step keeps with its interaction between two requests (a passkey challenge, a sign-in begun at
 * another provider, an account being registered with a passkey): an entry of the interaction's `result`, beside
 * the others, persisted with it. Taking an entry removes it, so what it stood for serves once.
 */
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { z } from 'zod';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Keeps `value` under `key`, beside what the interaction's result holds already. */
export async function keepWithInteraction(details: Interaction, key: string, value: unknown): Promise<void> {
  details.result = { ...(details.result ?? {}), [key]: value } as InteractionResults;
  await details.persist();
}

/** Takes what is kept under `key` out of the interaction; undefined when nothing is, or not in `schema`'s shape. */
export async function takeFromInteraction<Schema extends z.ZodType>(details: Interaction, key: string, schema: Schema): Promise<z.infer<Schema> | undefined> {
  const { [key]: kept, ...rest } = (details.result ?? {}) as Record<string, unknown>;
  if (kept === undefined) return undefined;
  details.result = rest as InteractionResults;
  await details.persist();
  const parsed = schema.safeParse(kept);
  return parsed.success ? parsed.data : undefined;
}
