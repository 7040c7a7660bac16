import { PvError } from '@prompt-valet/core';

/** An error a request caused: its HTTP status and a stable code, answered as `{"error":{code,message}}`. */
export class HttpError extends PvError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? {} : { cause });
  }
}
