/**
 * Holds the Provider in service and swaps in a new one between requests (when the signing keys change). A
 * request that started on the old Provider finishes on it; sessions, interactions and grants live in the
 * stores, not in the Provider, so nothing is lost by the swap.
 */
import type { Middleware } from 'koa';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';

export class ProviderSlot {
  #current: Provider;
  #mounted: Middleware;

  constructor(provider: Provider) {
    this.#current = provider;
    this.#mounted = mount(provider);
  }

  get current(): Provider {
    return this.#current;
  }

  swap(provider: Provider): void {
    this.#current = provider;
    this.#mounted = mount(provider);
  }

  /** Runs the request on whichever Provider is current when it arrives. */
  readonly mounted: Middleware = (ctx, next) => this.#mounted(ctx, next);

  /**
   * A stand-in that always forwards to the current Provider, for code written against a Provider instance
   * (the interaction routes call interactionDetails/interactionFinished and use its Grant model).
   */
  readonly proxy: Provider = new Proxy({} as Provider, {
    get: (_target, property) => {
      const value = Reflect.get(this.#current, property, this.#current);
      return typeof value === 'function' && !/^[A-Z]/.test(String(property)) ? value.bind(this.#current) : value;
    },
  });
}
