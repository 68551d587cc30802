/**
 * What a new password must be, after NIST SP 800-63B §3.1.1.2: long enough (PASSWORD_MIN_LENGTH, 8 by default), at
 * most bcrypt's 72 bytes, and not one that is guessed first: none of the 49,000 most common passwords (zxcvbn's
 * list), none of a deployment's own list (PASSWORD_BLOCKLIST_FILE, as Keycloak's password blacklist), and not the
 * account's email address, the part before its @, its name or the service's name. No rules about character
 * classes, which NIST advises against. Compared without case, and also without a run of digits and symbols at the
 * end, since `Password1!` is guessed as early as `password`.
 *
 * With PASSWORD_BREACH_CHECK, a password that passes all that is looked up among breached ones too
 * (./breached-passwords.ts).
 *
 * The common list is loaded on the first password checked, not at start: it costs a worker about 4 MB of heap,
 * and workers that only serve tokens never set a password.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../logger.js';
import { type BreachLookupCounts, BreachedPasswords } from './breached-passwords.js';

export const MAX_PASSWORD_BYTES = 72;
export const DEFAULT_MIN_PASSWORD_LENGTH = 8;

export interface PasswordPolicyOptions {
  minLength?: number;
  /** Words of the deployment's own to refuse (one a line), already read: the CLI and every worker share the file. */
  blocklist?: readonly string[];
  /** The service's names people would pick (the issuer's host name parts). */
  serviceWords?: readonly string[];
  /** Passwords known from data breaches (PASSWORD_BREACH_CHECK), asked last, as the only check that leaves the server. */
  breached?: BreachedPasswords;
}

/** Who the password is for: words of theirs that must not be the password. */
export interface PasswordContext {
  email?: string;
  name?: string | null;
}

const COMMON_REFUSAL = 'that password is one of the first that are guessed: choose another (a few unrelated words make a strong one)';
const PERSONAL_REFUSAL = 'a password may not be your email address, your name or the name of this service';
const BREACHED_REFUSAL = 'that password has appeared in a data breach, so it is among the first that are tried: choose another';

/** The password as it is compared: lower case, and without a trailing run of digits and symbols. */
function forms(password: string): string[] {
  const lower = password.normalize('NFKC').toLowerCase().trim();
  const stem = lower.replace(/[\d\W_]+$/u, '');
  return stem && stem !== lower && stem.length >= 4 ? [lower, stem] : [lower];
}

let commonPasswords: Promise<ReadonlySet<string>> | undefined;

/** zxcvbn's common passwords, read once per process. */
function loadCommonPasswords(): Promise<ReadonlySet<string>> {
  commonPasswords ??= import('@zxcvbn-ts/language-common/dist/passwords.json.mjs').then(
    (module: { default: string[] }) => new Set(module.default.map((word) => word.toLowerCase())),
  );
  return commonPasswords;
}

/** The lines of a blocklist file: one word a line, blank lines and `#` comments skipped. */
export function readBlocklist(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
}

/** Host name labels people would use as a password ("example" of login.example.com), without the top-level one. */
export function serviceWordsOf(issuer: string): string[] {
  const labels = new URL(issuer).hostname.split('.');
  return labels.slice(0, -1).filter((label) => label.length >= 4);
}

/**
 * The policy a server's configuration sets (PASSWORD_MIN_LENGTH, PASSWORD_BLOCKLIST_FILE, the issuer's name,
 * PASSWORD_BREACH_CHECK); `logger` hears of breach lookups that could not be made.
 */
export function passwordPolicyOf(
  config: { issuer: string; passwords: { minLength: number; blocklist: string[]; breachCheck?: { rangeApi: string } | undefined } },
  logger?: Pick<Logger, 'warn'>,
): PasswordPolicy {
  const { breachCheck } = config.passwords;
  const breached =
    breachCheck &&
    new BreachedPasswords({
      rangeApi: breachCheck.rangeApi,
      onUnavailable: (reason) => logger?.warn({ reason }, 'a new password was not looked up among breached passwords: it went through unchecked'),
    });
  return new PasswordPolicy({ minLength: config.passwords.minLength, blocklist: config.passwords.blocklist, serviceWords: serviceWordsOf(config.issuer), breached });
}

export class PasswordPolicy {
  readonly minLength: number;
  readonly #blocklist: ReadonlySet<string>;
  readonly #serviceWords: readonly string[];
  readonly #breached?: BreachedPasswords;

  /** Breach lookups by outcome (../metrics/metrics.ts); undefined without PASSWORD_BREACH_CHECK. */
  get breachLookups(): Readonly<BreachLookupCounts> | undefined {
    return this.#breached?.counts;
  }

  constructor(options: PasswordPolicyOptions = {}) {
    this.minLength = options.minLength ?? DEFAULT_MIN_PASSWORD_LENGTH;
    this.#blocklist = new Set((options.blocklist ?? []).map((word) => word.toLowerCase()));
    this.#serviceWords = (options.serviceWords ?? []).map((word) => word.toLowerCase());
    this.#breached = options.breached;
  }

  /** Why the length alone refuses a password, or undefined. */
  #lengthProblem(password: string): string | undefined {
    if (password.length < this.minLength) return `a password needs at least ${this.minLength} characters`;
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return `a password may be at most ${MAX_PASSWORD_BYTES} bytes long`;
    return undefined;
  }

  /** Why `password` will not do for this account, or undefined when it will. */
  async problem(password: string, context: PasswordContext = {}): Promise<string | undefined> {
    const lengthProblem = this.#lengthProblem(password);
    if (lengthProblem) return lengthProblem;
    const candidates = forms(password);
    const personal = this.#personalWords(context);
    if (candidates.some((candidate) => personal.has(candidate))) return PERSONAL_REFUSAL;
    const common = await loadCommonPasswords();
    if (candidates.some((candidate) => common.has(candidate) || this.#blocklist.has(candidate))) return COMMON_REFUSAL;
    if (await this.#breached?.includes(password)) return BREACHED_REFUSAL;
    return undefined;
  }

  #personalWords(context: PasswordContext): Set<string> {
    const email = context.email?.toLowerCase() ?? '';
    const local = email.split('@')[0] ?? '';
    const name = context.name?.toLowerCase().trim() ?? '';
    const words = [email, local, name, name.replace(/\s+/g, ''), ...name.split(/\s+/), ...this.#serviceWords];
    return new Set(words.filter((word) => word.length >= 3));
  }
}
