/**
 * log.ts - orzo's logging: levels, stderr and log file sinks.
 *
 * The only module that writes diagnostics. Build a message string only behind
 * a level check on hot paths: `if (logLevel >= LOG_TRACE) trace(...)`.
 *
 * @module
 */

import { libc } from "./ffi/libc.ts";
import { cString } from "./ffi/mem.ts";
import { O_APPEND, O_CLOEXEC, O_CREAT, O_WRONLY } from "./ffi/layout.ts";
import { check } from "./ffi/errno.ts";

/** Level: errors only. */
export const LOG_ERR = 0;
/** Level: warnings. */
export const LOG_WARN = 1;
/** Level: informational (default). */
export const LOG_INFO = 2;
/** Level: debugging (-d). */
export const LOG_DEBUG = 3;
/** Level: per-packet tracing (--trace). */
export const LOG_TRACE = 4;

const LEVEL_NAMES = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/** Current level; messages above it are dropped. */
export let logLevel = LOG_INFO;
let stderrOn = true;
let fileFd = -1;
let fileSize = 0;
let fileLimit = 1 << 20;
let fileWritten = 0;
const start = performance.now();
const encoder = new TextEncoder();

/**
 * Sets the logging level.
 * @param level one of LOG_ERR..LOG_TRACE
 */
export function logSetLevel(level: number): void {
  logLevel = level;
}

/**
 * Turns logging to standard error on or off (off once daemonized).
 * @param on whether messages go to stderr
 */
export function logSetStderr(on: boolean): void {
  stderrOn = on;
}

/**
 * Opens a log file; messages go there instead of stderr. When the file would
 * grow past `limit` bytes it is started again from empty.
 * @param path file to append to
 * @param limit size limit in bytes
 * @throws SysError when the file cannot be opened
 */
export function logOpenFile(path: string, limit: number): void {
  fileFd = check(
    libc.symbols.open(cString(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600),
    `open log file ${path}`,
  );
  fileLimit = limit;
  fileWritten = 0;
  fileSize = 0;
}

function emit(level: number, msg: string): void {
  if (level > logLevel) return;
  const stamp = ((performance.now() - start) / 1000).toFixed(4);
  if (fileFd >= 0) {
    const line = encoder.encode(`${stamp} ${LEVEL_NAMES[level]}: ${msg}\n`);
    if (fileSize + line.length > fileLimit) {
      libc.symbols.ftruncate(fileFd, 0n);
      fileSize = 0;
    }
    const n = libc.symbols.write(fileFd, line, line.length);
    if (n > 0) {
      fileSize += n;
      fileWritten += n;
    }
    return;
  }
  if (!stderrOn) return;
  const text = logLevel >= LOG_DEBUG ? `${stamp}: ${msg}\n` : `${msg}\n`;
  const line = encoder.encode(text);
  libc.symbols.write(2, line, line.length);
}

/** Total bytes written to the log file, for tests. */
export function logFileWritten(): number {
  return fileWritten;
}

/**
 * Logs an error.
 * @param msg the message
 */
export function err(msg: string): void {
  emit(LOG_ERR, msg);
}

/**
 * Logs a warning.
 * @param msg the message
 */
export function warn(msg: string): void {
  emit(LOG_WARN, msg);
}

/**
 * Logs an informational message.
 * @param msg the message
 */
export function info(msg: string): void {
  emit(LOG_INFO, msg);
}

/**
 * Logs a debugging message.
 * @param msg the message
 */
export function debug(msg: string): void {
  emit(LOG_DEBUG, msg);
}

/**
 * Logs a per-packet trace message; guard the call with a level check.
 * @param msg the message
 */
export function trace(msg: string): void {
  emit(LOG_TRACE, msg);
}
