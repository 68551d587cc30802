/**
 * Passwords known from data breaches (NIST SP 800-63B §3.1.1.2: "passwords obtained from previous breach
 * corpuses"), looked up in Have I Been Pwned's Pwned Passwords by k-anonymity: only the first 5 hex characters of
 * the password's SHA-1 leave the server, and the answer lists every breached hash with that prefix (padded with
 * decoys of count 0, so that its size tells nothing either), which is compared here. Opt-in
 * (PASSWORD_BREACH_CHECK), since it calls out to the internet; PASSWORD_BREACH_API names a mirror of the range API
 * instead (an air-gapped deployment can serve the downloadable corpus itself).
 *
 * The lookup fails open: an answer that is late (2 s) or wrong lets the password through and is logged, as a
 * third party's outage must not stop people from choosing a password. A prefix's answer is kept for a minute, so
 * a form's check and the store's check of the same password make one call.
 */
import { createHash } from 'node:crypto';

export const PWNED_PASSWORDS_RANGE_API = 'https://api.pwnedpasswords.com/range/';

const TIMEOUT_MS = 2000;
const KEPT_MS = 60_000;
const KEPT_PREFIXES = 256;

export interface BreachedPasswordsOptions {
  /** The range API: the prefix is appended to it. */
  rangeApi?: string;
  /** Told when a lookup could not be made, with why (the password went through unchecked). */
  onUnavailable?: (reason: string) => void;
  fetch?: typeof fetch;
}

/** Passwords looked up since start, by outcome: found in the corpus, not found, or not asked (the API failed). */
export interface BreachLookupCounts {
  breached: number;
  clean: number;
  unavailable: number;
}

export class BreachedPasswords {
  /** Counted in plain integers and read at scrape time (src/metrics/metrics.ts). */
  readonly counts: BreachLookupCounts = { breached: 0, clean: 0, unavailable: 0 };
  readonly #rangeApi: string;
  readonly #onUnavailable: (reason: string) => void;
  readonly #fetch: typeof fetch;
  /** Answers by prefix, with when each was fetched; the oldest go first once there are too many. */
  readonly #kept = new Map<string, { at: number; suffixes: Promise<ReadonlySet<string>> }>();

  constructor(options: BreachedPasswordsOptions = {}) {
    this.#rangeApi = options.rangeApi ?? PWNED_PASSWORDS_RANGE_API;
    this.#onUnavailable = options.onUnavailable ?? (() => undefined);
    this.#fetch = options.fetch ?? fetch;
  }

  /** Whether the password is in the breach corpus; false also when the corpus could not be asked. */
  async includes(password: string): Promise<boolean> {
    const hash = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
    let breached: boolean;
    try {
      breached = (await this.#suffixesOf(hash.slice(0, 5))).has(hash.slice(5));
    } catch (error) {
      this.counts.unavailable += 1;
      this.#onUnavailable((error as Error).message);
      return false;
    }
    this.counts[breached ? 'breached' : 'clean'] += 1;
    return breached;
  }

  #suffixesOf(prefix: string): Promise<ReadonlySet<string>> {
    const now = Date.now();
    const kept = this.#kept.get(prefix);
    if (kept && now - kept.at < KEPT_MS) return kept.suffixes;
    const suffixes = this.#fetchRange(prefix);
    this.#kept.delete(prefix);
    this.#kept.set(prefix, { at: now, suffixes });
    if (this.#kept.size > KEPT_PREFIXES) this.#kept.delete(this.#kept.keys().next().value as string);
    // A failed answer is not kept: the next password tries again.
    suffixes.catch(() => this.#kept.get(prefix)?.suffixes === suffixes && this.#kept.delete(prefix));
    return suffixes;
  }

  async #fetchRange(prefix: string): Promise<ReadonlySet<string>> {
    const response = await this.#fetch(`${this.#rangeApi}${prefix}`, {
      headers: { 'Add-Padding': 'true', 'User-Agent': 'authz password check' },
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
    if (!response.ok) throw new Error(`the range API answered ${response.status}`);
    const suffixes = new Set<string>();
    for (const line of (await response.text()).split('\n')) {
      const [suffix, count] = line.trim().split(':');
      // Padding lines have a count of 0: they are not breached passwords.
      if (suffix && /^[0-9A-F]{35}$/i.test(suffix) && Number(count) > 0) suffixes.add(suffix.toUpperCase());
    }
    return suffixes;
  }
}
