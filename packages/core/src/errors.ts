/**
 * The one base of every error the tools throw on purpose. `code` is stable
 * snake_case (it ends up in records, HTTP answers and logs), `retryable` says
 * whether the same input may succeed later unchanged, `detail` carries extra
 * text for a record (git's stderr, redacted), and `cause` is the standard
 * ES2022 one. Anything thrown that is not a PvError is a bug.
 */
export interface PvErrorOptions {
  retryable?: boolean;
  detail?: string;
  cause?: unknown;
}

export class PvError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly detail?: string;
  constructor(code: string, message: string, opts: PvErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    if (opts.detail !== undefined) this.detail = opts.detail;
  }
}
