/**
 * _values.ts - validation of single option arguments (names, paths, numbers).
 *
 * Each helper takes the argument and the option as written ("-I" or
 * "--ns-ifname", for messages) and returns the parsed value or throws a
 * ConfError quoting the bad input.
 *
 * @module
 */

import { parseUnsigned } from "./_num.ts";
import type { RunAs } from "./config.ts";
import { ConfError } from "./errors.ts";

/** IFNAMSIZ: interface names are at most 15 bytes. */
const IFNAMSIZ = 16;
/** PATH_MAX: paths are at most 4095 bytes. */
const PATH_MAX = 4096;
/** UNIX_PATH_MAX: socket paths are at most 107 bytes. */
export const UNIX_PATH_MAX = 108;
/** Smallest --log-size passt accepts: 5 * max(BUFSIZ, page size). */
export const LOG_SIZE_MIN = 5 * 8192;
/** Largest MTU: 65535 minus the 14-byte Ethernet header. */
export const MTU_MAX = 65535 - 14;
/** Longest host name or FQDN (RFC 1035). */
const MAXDNAME = 253;

const encoder = new TextEncoder();

/** Length in bytes of a string in UTF-8, as the kernel counts. */
function byteLength(s: string): number {
  return encoder.encode(s).length;
}

/**
 * Checks an interface name as the kernel does (dev_valid_name()).
 * @param arg the name
 * @param opt the option as written
 * @returns the name
 */
export function checkIfname(arg: string, opt: string): string {
  let why = "";
  if (arg === "") why = "empty";
  else if (byteLength(arg) >= IFNAMSIZ) why = `longer than ${IFNAMSIZ - 1} bytes`;
  else if (arg === "." || arg === "..") why = "reserved name";
  else if (/[/:\s]/.test(arg)) why = "contains '/', ':' or white space";
  if (why !== "") throw new ConfError(`Invalid interface name "${arg}" for ${opt}: ${why}`);
  return arg;
}

/**
 * Checks a file path argument.
 * @param arg the path
 * @param opt the option as written
 * @param what what the path is for, in the message
 * @param max size of the C buffer it must fit, terminator included
 * @returns the path
 */
export function checkPath(arg: string, opt: string, what: string, max = PATH_MAX): string {
  if (arg === "") throw new ConfError(`Invalid ${what} "" for ${opt}: empty`);
  if (byteLength(arg) >= max) {
    throw new ConfError(`Invalid ${what} "${arg}" for ${opt}: longer than ${max - 1} bytes`);
  }
  return arg;
}

/**
 * Checks a host name or FQDN.
 * @param arg the name
 * @param opt the option as written
 * @returns the name
 */
export function checkDomainName(arg: string, opt: string): string {
  if (byteLength(arg) > MAXDNAME) {
    throw new ConfError(`Invalid name "${arg}" for ${opt}: longer than ${MAXDNAME} bytes`);
  }
  return arg;
}

/**
 * Parses an unsigned number argument (C notation: 0x hex, leading-0 octal).
 * @param arg the text
 * @param what what it is, for the message ("MTU")
 * @returns the value
 */
export function parseNumberArg(arg: string, what: string): number {
  const v = parseUnsigned(arg, 0);
  if (v === null) throw new ConfError(`Invalid ${what} "${arg}": not an unsigned number`);
  return v;
}

/**
 * Parses -m: 0 (announce no MTU) up to {@link MTU_MAX}.
 * @param arg the text
 * @returns the MTU
 */
export function parseMtu(arg: string): number {
  const v = parseNumberArg(arg, "MTU");
  if (v > MTU_MAX) throw new ConfError(`Invalid MTU "${arg}": larger than ${MTU_MAX}`);
  return v;
}

/**
 * Parses -n: a dotted contiguous netmask or a prefix length up to 32.
 * @param arg the text
 * @param parseMask dotted-quad parser
 * @returns the prefix length
 */
export function parseNetmask(arg: string, parseMask: (s: string) => Uint8Array | null): number {
  const m = parseMask(arg);
  if (m !== null) {
    const v = ((m[0]! << 24) | (m[1]! << 16) | (m[2]! << 8) | m[3]!) >>> 0;
    const len = Math.clz32(~v);
    if (len === 32 || ((v << len) >>> 0) === 0) return len;
    throw new ConfError(`Invalid netmask "${arg}": ones are not contiguous`);
  }
  const n = parseUnsigned(arg, 0);
  if (n === null || n > 32) {
    throw new ConfError(`Invalid netmask "${arg}": expected a dotted mask or a length up to 32`);
  }
  return n;
}

/**
 * Parses --log-size: at least {@link LOG_SIZE_MIN} bytes.
 * @param arg the text
 * @returns the size in bytes
 */
export function parseLogSize(arg: string): number {
  const v = parseUnsigned(arg, 0);
  if (v === null || v < LOG_SIZE_MIN) {
    throw new ConfError(
      `Invalid --log-size "${arg}": expected a number of bytes, at least ${LOG_SIZE_MIN}`,
    );
  }
  return v;
}

/**
 * Parses -F: a file descriptor above standard error.
 * @param arg the text
 * @returns the descriptor
 */
export function parseFd(arg: string): number {
  const v = parseUnsigned(arg, 0);
  if (v === null || v <= 2 || v > 0x7fffffff) {
    throw new ConfError(`Invalid --fd "${arg}": expected a descriptor number above 2`);
  }
  return v;
}

/** One side of --runas: an ID or a name. */
function runasPart(s: string, arg: string): number | string {
  const bad = () => new ConfError(`Invalid --runas "${arg}": expected UID[:GID] or LOGIN[:GROUP]`);
  if (s === "" || /\s/.test(s) || /^-[0-9]/.test(s)) throw bad();
  const n = parseUnsigned(s, 0);
  if (n === null) return s;
  if (n > 0xfffffffe) throw bad();
  return n;
}

/**
 * Parses --runas UID[:GID] or LOGIN[:GROUP]. Names are looked up later;
 * passt refuses a login name that maps to UID 0.
 * @param arg the text
 * @returns the user and optional group
 */
export function parseRunas(arg: string): RunAs {
  const sep = arg.indexOf(":");
  if (sep < 0) return { user: runasPart(arg, arg) };
  return { user: runasPart(arg.slice(0, sep), arg), group: runasPart(arg.slice(sep + 1), arg) };
}
