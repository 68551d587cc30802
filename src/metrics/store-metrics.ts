/** Wraps a storage adapter so that every call is timed and every failure counted, per store and operation. */
import type { Adapter } from 'oidc-provider';
import { ADAPTER_OPERATIONS } from '../store/adapters.js';
import type { Metrics } from './metrics.js';

export function instrumentAdapter(adapter: Adapter, store: string, metrics: Metrics): Adapter {
  const instrumented = Object.create(adapter) as Adapter;
  for (const operation of ADAPTER_OPERATIONS) {
    const original = adapter[operation] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof original !== 'function') continue;
    (instrumented as unknown as Record<string, unknown>)[operation] = async (...args: unknown[]) => {
      const end = metrics.storeDuration.startTimer({ store, operation });
      try {
        return await original.apply(adapter, args);
      } catch (error) {
        // A lost consume race is the protocol working, not a store failure.
        if ((error as { error?: string }).error !== 'invalid_grant') metrics.storeErrors.inc({ store, operation });
        throw error;
      } finally {
        end();
      }
    };
  }
  return instrumented;
}
