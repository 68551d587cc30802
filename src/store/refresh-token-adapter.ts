/**
 * Refresh tokens in SQL, with a grace window for rotation. Every use rotates a refresh token, and presenting a
 * rotated one again revokes the grant (theft detection, RFC 9700 §4.14.2). A client whose two tabs refresh at the
 * same moment would trip that, so for REFRESH_REUSE_GRACE seconds after a rotation the just-rotated token is
 * accepted again, as long as the chain has not moved on (no newer token of the grant has been used since). What
 * it yields belongs to the same grant, so one revocation still ends it all, and each such reuse is reported.
 * After the window, reuse revokes the grant as before. A window of 0 restores strict single use.
 */
import { type AdapterPayload, errors } from 'oidc-provider';
import type { Database } from './database.js';
import { SqlAdapter } from './sql-adapter.js';
import { storageId } from './storage-id.js';

export interface RefreshGraceOptions {
  graceSeconds: number;
  /** Called when a rotated token is accepted again inside the window. */
  onGraceReuse?: (payload: AdapterPayload) => void;
}

export class RefreshTokenAdapter extends SqlAdapter {
  constructor(
    private readonly database: Database,
    private readonly grace: RefreshGraceOptions,
  ) {
    super('RefreshToken', database);
  }

  override async find(id: string): Promise<AdapterPayload | undefined> {
    const payload = await super.find(id);
    if (!payload?.consumed || !(await this.#withinGrace(id))) return payload;
    const { consumed: _consumed, ...unconsumed } = payload;
    return unconsumed;
  }

  /** Two concurrent uses both read the token unconsumed; the loser of the atomic consume is let through in the window. */
  override async consume(id: string): Promise<void> {
    try {
      await super.consume(id);
    } catch (error) {
      if (!(error instanceof errors.InvalidGrant) || !(await this.#withinGrace(id))) throw error;
      const payload = await super.find(id);
      if (payload) this.grace.onGraceReuse?.(payload);
    }
  }

  /** Consumed less than the window ago, and no newer refresh token of the same grant consumed since. */
  async #withinGrace(id: string): Promise<boolean> {
    if (this.grace.graceSeconds <= 0) return false;
    const row = await this.database('oidc_models as token')
      .first(this.database.raw('1 as ok'))
      .where({ 'token.model': 'RefreshToken', 'token.id': storageId(id) })
      .whereNotNull('token.consumed_at')
      .where('token.consumed_at', '>', this.database.raw(`now() - ? * interval '1 second'`, [this.grace.graceSeconds]))
      .whereNotExists((newer) =>
        newer
          .select(this.database.raw('1'))
          .from('oidc_models as newer')
          .where('newer.model', 'RefreshToken')
          .whereRaw('newer.grant_id = token.grant_id')
          .whereRaw('newer.consumed_at > token.consumed_at'),
      );
    return row !== undefined;
  }
}
