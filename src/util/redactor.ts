/** What a secret is replaced with wherever strata stores or prints text. */
export const REDACTED = "[redacted]";

/**
 * Secrets shorter than this are not searched for inside other text: a short value ("EMPTY", the
 * key a local vLLM server ignores) is no credential, and replacing it everywhere would mangle
 * answers and messages that merely contain the word.
 */
export const MIN_SECRET_LENGTH = 8;

/** `scheme://user:password@`: the password of any URL written into a message. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*:)[^\s@/?#]+@/gi;

/** Options of {@link Redactor}. */
export interface RedactorOptions {
  /** Secrets shorter than this are ignored (default {@link MIN_SECRET_LENGTH}). */
  readonly minLength?: number;
}

/**
 * A set of secrets (API keys, database passwords) and the one function that removes them from a
 * text: each occurrence of a secret, and the password of any `scheme://user:password@` URL,
 * becomes `[redacted]`. Secrets are matched exactly (also their URL-encoded form), longest first.
 *
 * @example
 * const redactor = new Redactor();
 * redactor.add("sk-live-0123456789");
 * redactor.redact("401: bad key sk-live-0123456789"); // "401: bad key [redacted]"
 */
export class Redactor {
  readonly #minLength: number;
  #secrets: string[] = [];

  constructor(secrets: Iterable<string> = [], options: RedactorOptions = {}) {
    this.#minLength = Math.max(1, options.minLength ?? MIN_SECRET_LENGTH);
    for (const secret of secrets) this.add(secret);
  }

  /** Registers a secret (a blank or too short value is ignored). */
  add(secret: string | null | undefined): void {
    if (typeof secret !== "string") return;
    const forms = [secret, secret.trim(), encodeURIComponent(secret.trim())];
    let changed = false;
    for (const form of forms) {
      if (form.length < this.#minLength || this.#secrets.includes(form)) continue;
      this.#secrets.push(form);
      changed = true;
    }
    // longest first, so a secret that contains another is replaced whole
    if (changed) this.#secrets.sort((a, b) => b.length - a.length);
  }

  /** `text` with every registered secret and every URL password replaced by `[redacted]`. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    }
    return out.includes("://") ? out.replace(URL_PASSWORD, `$1${REDACTED}@`) : out;
  }

  /** {@link redact} for a value that may be null. */
  redactNullable(text: string | null): string | null {
    return text === null ? null : this.redact(text);
  }
}

/**
 * The secrets of this process: every API key the inference runtime sends and the password of
 * the database URL are registered here, and everything strata stores (ledger rows, step and run
 * errors) or prints (the CLI's stdout and stderr) goes through {@link redactSecrets}.
 */
export const PROCESS_SECRETS = new Redactor();

/**
 * Registers a secret of this process: it is redacted from everything strata stores or prints.
 *
 * @example
 * registerSecret(process.env.OPENAI_API_KEY);
 */
export function registerSecret(secret: string | null | undefined): void {
  PROCESS_SECRETS.add(secret);
}

/**
 * `text` without any secret of this process (see {@link PROCESS_SECRETS}).
 *
 * @example
 * writeLine(stderr, redactSecrets(error.message));
 */
export function redactSecrets(text: string): string {
  return PROCESS_SECRETS.redact(text);
}
