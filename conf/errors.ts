/**
 * errors.ts - the error class for bad command-line input.
 *
 * Every problem with the options orzo was given ends up as one ConfError whose
 * message is a single line meant for the user, without a stack trace.
 *
 * @module
 */

/**
 * A bad option, option argument or combination of options.
 *
 * The message is one line: sentence case, the bad value quoted, detail after a
 * colon. Messages from the option scanner itself follow glibc's getopt wording
 * (`unrecognized option '--foo'`), because callers such as Podman look for it.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfError } from "./errors.ts";
 *
 * const e = new ConfError('Invalid MTU "x"');
 * assert.equal(e.name, "ConfError");
 * ```
 */
export class ConfError extends Error {
  /**
   * Makes a configuration error.
   * @param message one line describing the problem
   */
  constructor(message: string) {
    super(message);
    this.name = "ConfError";
  }
}
