/**
 * The key ring: the signing keys in force right now, re-read from keys/ on demand. It answers which keys to
 * publish and which one signs, and whether that changed since the last look, so the server can build a fresh
 * Provider when it did. A bad file found on a re-read is reported and the keys already in force are kept.
 */
import { createHash } from 'node:crypto';
import { readCookieSecrets } from './cookie-secrets.js';
import { type KeyStatus, keyStates, publicationOrder } from './key-states.js';
import { KeyFileError, type KeyFile, SIGNING_ALG, type SigningJwk, readKeyFiles, writeNewKey } from './signing-keys.js';

export interface KeyRingOptions {
  keysDir: string;
  passphrase?: string;
  /** How long a replaced key stays published: the longest life of anything it signed (or was handed back as a hint). */
  retireAfterSeconds: number;
  /** Cookie secrets from the environment; verify after those in keys/, sign only when keys/ has none. */
  staticCookieSecrets?: string[];
  now?: () => Date;
}

export class KeyRing {
  readonly #options: KeyRingOptions;
  #files: KeyFile[] = [];
  #statuses: KeyStatus[] = [];
  #published: SigningJwk[] = [];
  #cookieSecrets: string[] = [];

  private constructor(options: KeyRingOptions) {
    this.#options = options;
  }

  /**
   * Reads keys/ (throws KeyFileError naming the file at fault). An empty folder is an error unless
   * `generateIfEmpty` (make a first key) or `allowEmpty` (for the CLI listing an empty folder).
   */
  static async open(options: KeyRingOptions & { generateIfEmpty?: boolean; allowEmpty?: boolean }): Promise<KeyRing> {
    const ring = new KeyRing(options);
    let files = await readKeyFiles(options.keysDir, options.passphrase);
    if (files.length === 0 && options.generateIfEmpty) {
      await writeNewKey(options.keysDir, { activatesAt: ring.now(), passphrase: options.passphrase });
      files = await readKeyFiles(options.keysDir, options.passphrase);
    }
    if (files.length === 0 && !options.allowEmpty) throw new Error(`no signing key in ${options.keysDir}`);
    ring.#apply(files, await ring.#readCookieSecrets());
    return ring;
  }

  now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  /** Private JWKs to hand to oidc-provider, the signing key first. */
  get signingKeys(): SigningJwk[] {
    return this.#published;
  }

  get statuses(): KeyStatus[] {
    return this.#statuses;
  }

  /** Cookie-signing secrets, Keygrip order: the first signs, all verify. */
  get cookieSecrets(): string[] {
    return this.#cookieSecrets;
  }

  /** Identifies the published keys, the signing key and the cookie secrets; equal fingerprints need no new Provider. */
  get fingerprint(): string {
    const secrets = createHash('sha256').update(this.#cookieSecrets.join('\n')).digest('base64url');
    return `${this.#published.map((key) => key.kid).join(',')};${secrets}`;
  }

  async #readCookieSecrets(): Promise<string[]> {
    const fromFiles = await readCookieSecrets(this.#options.keysDir, this.now());
    const fromEnvironment = (this.#options.staticCookieSecrets ?? []).filter((secret) => !fromFiles.includes(secret));
    return [...fromFiles, ...fromEnvironment];
  }

  /** Re-reads keys/ and re-evaluates states at the current time. Returns whether the published set changed. */
  async refresh(): Promise<boolean> {
    const before = this.fingerprint;
    const files = await readKeyFiles(this.#options.keysDir, this.#options.passphrase);
    if (files.length === 0) throw new Error(`no signing key left in ${this.#options.keysDir}; keeping the keys in force`);
    this.#apply(files, await this.#readCookieSecrets());
    return this.fingerprint !== before;
  }

  #apply(files: KeyFile[], cookieSecrets: string[]): void {
    if (files.length > 0) refuseWithoutRsa(files, this.#options.keysDir);
    this.#files = files;
    this.#cookieSecrets = cookieSecrets;
    this.#statuses = keyStates(files, this.now(), this.#options.retireAfterSeconds);
    this.#published = publicationOrder(files, this.#statuses).map((file) => file.jwk);
  }

  /** The key files read, with their paths. */
  get files(): readonly KeyFile[] {
    return this.#files;
  }

  /** The key files whose state is expired (what `authz keys prune` deletes). */
  get expiredFiles(): string[] {
    const expired = new Set(this.#statuses.filter((status) => status.state === 'expired').map((status) => status.kid));
    return this.#files.filter((file) => expired.has(file.kid)).map((file) => file.file);
  }
}

/** OpenID Connect's default (and our access tokens') algorithm must always be there to sign with. */
function refuseWithoutRsa(files: readonly KeyFile[], keysDir: string): void {
  if (!files.some((file) => file.alg === SIGNING_ALG)) {
    throw new KeyFileError(`${keysDir}: holds no RSA key, which every server signs ${SIGNING_ALG} with; add one with \`authz keys rotate --activate-in 0\``);
  }
}
