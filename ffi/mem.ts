/**
 * mem.ts - C strings, pointers and small file helpers over libc.
 *
 * Deno's own file APIs need --allow-read/--allow-write; orzo runs with
 * --allow-ffi alone, so files under /proc and the pid, pcap and log files
 * are reached through libc here. Setup-time helpers: they allocate.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { check, errno, SysError } from "./errno.ts";
import { O_CLOEXEC, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY } from "./layout.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a string as a NUL-terminated C string.
 * @param s the string
 * @returns its UTF-8 bytes followed by a NUL byte
 */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/**
 * Decodes a NUL-terminated C string from a buffer.
 * @param buf bytes holding the string
 * @param off where it starts
 * @returns the text up to the first NUL (or the end of the buffer)
 */
export function fromCString(buf: Uint8Array, off = 0): string {
  let end = buf.indexOf(0, off);
  if (end < 0) end = buf.length;
  return decoder.decode(buf.subarray(off, end));
}

/**
 * Returns the address of a buffer as a bigint, for storing in a C struct.
 * Keep a JS reference to `buf` while C may use the address.
 * @param buf the buffer
 * @returns its address
 */
export function addressOf(buf: Uint8Array<ArrayBuffer> | BigUint64Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/**
 * Reads a whole file through libc (for /proc and small config files).
 * @param path file to read
 * @returns its bytes
 * @throws SysError when it cannot be opened or read
 */
export function readFileBytes(path: string): Uint8Array {
  const fd = libc.symbols.open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) throw new SysError(`open ${path}`, errno());
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(65536);
      const n = libc.symbols.read(fd, buf, buf.length);
      if (n < 0) throw new SysError(`read ${path}`, errno());
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  } finally {
    libc.symbols.close(fd);
  }
}

/**
 * Reads a whole text file through libc.
 * @param path file to read
 * @returns its text
 * @throws SysError when it cannot be opened or read
 */
export function readFileText(path: string): string {
  return decoder.decode(readFileBytes(path));
}

/**
 * Writes (creating or truncating) a file through libc.
 * @param path file to write
 * @param data text or bytes
 * @param mode permission bits for a new file
 * @throws SysError when it cannot be written
 */
export function writeFileText(path: string, data: string | Uint8Array, mode = 0o644): void {
  const fd = check(
    libc.symbols.open(cString(path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode),
    `open ${path}`,
  );
  try {
    writeAll(fd, typeof data === "string" ? encoder.encode(data) : data, path);
  } finally {
    libc.symbols.close(fd);
  }
}

/**
 * Writes all bytes to a blocking fd, retrying short writes.
 * @param fd file descriptor
 * @param data bytes to write
 * @param what description for errors
 * @throws SysError on failure
 */
export function writeAll(fd: number, data: Uint8Array, what = "write"): void {
  let off = 0;
  while (off < data.length) {
    const chunk = off === 0 ? data : data.subarray(off);
    const n = libc.symbols.write(fd, chunk as Uint8Array<ArrayBuffer>, chunk.length);
    if (n < 0) {
      if (errno() === 4) continue;
      throw new SysError(what, errno());
    }
    off += n;
  }
}

/**
 * Reads a symbolic link through libc.
 * @param path the link
 * @returns its target, or null when it cannot be read
 */
export function readLink(path: string): string | null {
  const buf = new Uint8Array(4096);
  const n = libc.symbols.readlink(cString(path), buf, buf.length);
  if (n < 0) return null;
  return decoder.decode(buf.subarray(0, n));
}

/**
 * Reads an environment variable through libc (no --allow-env needed).
 * @param name variable name
 * @returns its value, or undefined when unset
 */
export function getEnv(name: string): string | undefined {
  const p = libc.symbols.getenv(cString(name));
  if (p === null) return undefined;
  return new Deno.UnsafePointerView(p).getCString();
}
