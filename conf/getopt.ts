/**
 * getopt.ts - a command-line scanner with GNU getopt_long() semantics.
 *
 * Theory of operation: the scanner walks argv left to right, one option per
 * call to {@link Getopt.next}, exactly as getopt_long() does, so the caller
 * can act on options in order (passt prints --help or --version as soon as
 * it sees them and never looks at what follows).
 *
 * - Short options come from an optstring: `x` takes no argument, `x:` needs
 *   one, `x::` takes an optional one. They can be clustered (`-dfq`); an
 *   argument may be attached (`-t80`) or be the next word (`-t 80`), even if
 *   that word starts with a dash.
 * - Long options are `--name`, `--name=value` or `--name value` (the last
 *   only when an argument is required). Any unambiguous prefix of a name is
 *   accepted; a prefix shared by several options is still accepted when they
 *   all stand for the same thing (same value and argument rule), as GNU does.
 * - `--` ends the options. A lone `-`, or any word not starting with `-`, is
 *   a non-option: with a leading `+` in the optstring scanning stops there
 *   (passt's choice); without it, non-options are set aside and scanning goes
 *   on (GNU's default permutation).
 * - Errors are thrown as ConfError with glibc's wording, without the program
 *   name prefix.
 *
 * @module
 */

import { ConfError } from "./errors.ts";

/** Whether an option takes an argument. */
export type ArgRule = "none" | "required" | "optional";

/** One entry of the long option table. */
export interface LongOption {
  /** the name without leading dashes, for example "tcp-ports" */
  name: string;
  /** whether it takes an argument */
  hasArg: ArgRule;
  /** what {@link Getopt.next} reports for it: often the matching short option letter */
  val: string;
}

/** One option found on the command line. */
export interface GetoptResult {
  /** the short option letter, or the `val` of the long option */
  val: string;
  /** the option's argument, if it has one */
  arg: string | undefined;
  /** the option as written, for messages: "-t" or "--tcp-ports" (full name) */
  opt: string;
}

/**
 * Scans one argv. Create it, call next() until it returns null, then read
 * `positional`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { Getopt } from "./getopt.ts";
 *
 * const g = new Getopt(["-dt80", "cmd"], "+dt:", []);
 * assert.equal(g.next()?.val, "d");
 * assert.equal(g.next()?.arg, "80");
 * assert.equal(g.next(), null);
 * assert.deepEqual(g.positional, ["cmd"]);
 * ```
 */
export class Getopt {
  #argv: readonly string[];
  #short = new Map<string, ArgRule>();
  #long: readonly LongOption[];
  #stopAtNonOption: boolean;
  #index = 0;
  #cluster = "";
  #skipped: string[] = [];
  #done = false;

  /**
   * Prepares a scan.
   * @param argv the arguments, without the program name
   * @param optstring short options in getopt(3) syntax, optionally led by `+`
   * @param longopts the long option table
   */
  constructor(argv: readonly string[], optstring: string, longopts: readonly LongOption[]) {
    this.#argv = argv;
    this.#long = longopts;
    let s = optstring;
    this.#stopAtNonOption = s.startsWith("+");
    if (this.#stopAtNonOption) s = s.slice(1);
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      let rule: ArgRule = "none";
      if (s[i + 1] === ":") {
        rule = s[i + 2] === ":" ? "optional" : "required";
        i += rule === "optional" ? 2 : 1;
      }
      this.#short.set(c, rule);
    }
  }

  /** Index in argv of the next word to look at (getopt's optind, 0-based). */
  get optind(): number {
    return this.#index;
  }

  /** Non-option arguments, in order; complete once next() has returned null. */
  get positional(): string[] {
    return [...this.#skipped, ...this.#argv.slice(this.#index)];
  }

  /**
   * Finds the next option.
   * @returns the option, or null when there are no more
   * @throws {ConfError} for an unknown or ambiguous option, or a missing or
   *   unexpected argument
   */
  next(): GetoptResult | null {
    if (this.#cluster !== "") return this.#nextShort();
    while (!this.#done && this.#index < this.#argv.length) {
      const word = this.#argv[this.#index]!;
      if (word === "--") {
        this.#index++;
        this.#done = true;
        break;
      }
      if (word === "-" || !word.startsWith("-")) {
        if (this.#stopAtNonOption) {
          this.#done = true;
          break;
        }
        this.#skipped.push(word);
        this.#index++;
        continue;
      }
      this.#index++;
      if (word.startsWith("--")) return this.#nextLong(word.slice(2));
      this.#cluster = word.slice(1);
      return this.#nextShort();
    }
    this.#done = true;
    return null;
  }

  /** Handles the next letter of a short option cluster. */
  #nextShort(): GetoptResult {
    const c = this.#cluster[0]!;
    this.#cluster = this.#cluster.slice(1);
    const rule = c === ":" ? undefined : this.#short.get(c);
    if (rule === undefined) {
      this.#cluster = "";
      throw new ConfError(`invalid option -- '${c}'`);
    }
    const opt = `-${c}`;
    if (rule === "none") return { val: c, arg: undefined, opt };
    if (this.#cluster !== "") {
      const arg = this.#cluster;
      this.#cluster = "";
      return { val: c, arg, opt };
    }
    if (rule === "optional") return { val: c, arg: undefined, opt };
    if (this.#index >= this.#argv.length) {
      throw new ConfError(`option requires an argument -- '${c}'`);
    }
    return { val: c, arg: this.#argv[this.#index++]!, opt };
  }

  /** Handles one `--name[=value]` word (given without the dashes). */
  #nextLong(body: string): GetoptResult {
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const found = this.#lookupLong(name, body);
    const opt = `--${found.name}`;
    if (found.hasArg === "none") {
      if (eq >= 0) throw new ConfError(`option '${opt}' doesn't allow an argument`);
      return { val: found.val, arg: undefined, opt };
    }
    if (eq >= 0) return { val: found.val, arg: body.slice(eq + 1), opt };
    if (found.hasArg === "optional") return { val: found.val, arg: undefined, opt };
    if (this.#index >= this.#argv.length) {
      throw new ConfError(`option '${opt}' requires an argument`);
    }
    return { val: found.val, arg: this.#argv[this.#index++]!, opt };
  }

  /** Resolves a possibly abbreviated long option name. */
  #lookupLong(name: string, body: string): LongOption {
    const exact = this.#long.find((o) => o.name === name);
    if (exact !== undefined) return exact;
    const candidates = this.#long.filter((o) => o.name.startsWith(name));
    const first = candidates[0];
    if (first === undefined) throw new ConfError(`unrecognized option '--${body}'`);
    const same = candidates.every((o) => o.val === first.val && o.hasArg === first.hasArg);
    if (!same) {
      const list = candidates.map((o) => `'--${o.name}'`).join(" ");
      throw new ConfError(`option '--${name}' is ambiguous; possibilities: ${list}`);
    }
    return first;
  }
}

/**
 * Scans a whole argv at once.
 * @param argv the arguments, without the program name
 * @param optstring short options in getopt(3) syntax, optionally led by `+`
 * @param longopts the long option table
 * @returns the options in order and the non-option arguments
 * @throws {ConfError} on the first bad option, as {@link Getopt.next}
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { getoptLong } from "./getopt.ts";
 *
 * const r = getoptLong(["--tcp=80", "x"], "+t:", [
 *   { name: "tcp-ports", hasArg: "required", val: "t" },
 * ]);
 * assert.deepEqual(r.options, [{ val: "t", arg: "80", opt: "--tcp-ports" }]);
 * assert.deepEqual(r.positional, ["x"]);
 * ```
 */
export function getoptLong(
  argv: readonly string[],
  optstring: string,
  longopts: readonly LongOption[],
): { options: GetoptResult[]; positional: string[] } {
  const g = new Getopt(argv, optstring, longopts);
  const options: GetoptResult[] = [];
  for (let o = g.next(); o !== null; o = g.next()) options.push(o);
  return { options, positional: g.positional };
}
