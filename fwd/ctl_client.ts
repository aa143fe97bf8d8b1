/**
 * ctl_client.ts - `orzo ctl SOCKET add|remove|list|stats [PROTO SPEC]`:
 * one request to a running orzo's control socket (fwd/ctl.ts), its reply
 * printed. PROTO is tcp, udp (-t, -u: host to guest), tcp-ns or udp-ns
 * (-T, -U: the guest's loopback to the host's); the option letters -t, -u,
 * -T, -U are taken too.
 *
 * The reply line goes to standard output as it came (JSON); a refused
 * request prints its error as one line on standard error and exits 1, as
 * does a socket that cannot be reached. Only libc is used (no permission
 * beyond --allow-ffi), with a receive timeout so that a stuck orzo cannot
 * hang the caller.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno, errnoName } from "../ffi/errno.ts";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET } from "../ffi/layout.ts";
import { CTL_LINE_MAX, sockaddrUnix } from "./ctl.ts";
import { FWD_PROTOS, fwdProtoOf } from "./runtime.ts";

/** SO_RCVTIMEO (x86_64: struct timeval of two 64-bit words) */
const SO_RCVTIMEO = 20;

/** How long the client waits for a reply (ms). */
export const CTL_REPLY_TIMEOUT_MS = 10_000;

/** Usage of the subcommand. */
export const CTL_USAGE = "Usage: orzo ctl SOCKET add|remove tcp|udp|tcp-ns|udp-ns SPEC\n" +
  "       orzo ctl SOCKET list|stats\n";

/**
 * Builds the request line for the subcommand's arguments.
 * @param args OP [PROTO SPEC]
 * @returns the JSON request, or an error message
 */
export function ctlRequestLine(args: string[]): { line: string } | { error: string } {
  const [op, proto, spec] = args;
  if (op === "list" || op === "stats") {
    if (args.length !== 1) return { error: `"${op}" takes no arguments` };
    return { line: JSON.stringify({ op }) };
  }
  if (op === "add" || op === "remove") {
    if (args.length !== 3) return { error: `"${op}" needs a protocol and a SPEC` };
    const p = fwdProtoOf(proto);
    if (p === null) {
      return { error: `Unknown protocol "${proto}": ${FWD_PROTOS.join(", ")} (or -t, -u, -T, -U)` };
    }
    return { line: JSON.stringify({ op, proto: p, spec }) };
  }
  return { error: op === undefined ? "No operation given" : `Unknown operation "${op}"` };
}

/**
 * Sends one request and returns the reply line.
 * @param path the control socket
 * @param line the request (without newline)
 * @returns the reply line, or an error message
 */
export function ctlSend(path: string, line: string): { reply: string } | { error: string } {
  const fd = libc.symbols.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return { error: `socket: ${errnoName(errno())}` };
  try {
    const sa = sockaddrUnix(path);
    if (libc.symbols.connect(fd, sa, sa.length) < 0) {
      return { error: `Cannot connect to ${path}: ${errnoName(errno())}` };
    }
    const tv = new BigInt64Array([BigInt(Math.floor(CTL_REPLY_TIMEOUT_MS / 1000)), 0n]);
    libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new Uint8Array(tv.buffer), 16);
    const req = new TextEncoder().encode(line + "\n");
    if (libc.symbols.write(fd, req, req.length) !== req.length) {
      return { error: `Cannot send to ${path}: ${errnoName(errno())}` };
    }
    /* replies may be longer than requests (list, stats): read to the newline */
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(CTL_LINE_MAX);
    for (let total = 0; total < 1 << 20;) {
      const n = libc.symbols.read(fd, buf, buf.length);
      if (n < 0) return { error: `No reply from ${path}: ${errnoName(errno())}` };
      if (n === 0) break;
      chunks.push(buf.slice(0, n));
      total += n;
      if (buf.subarray(0, n).includes(10)) break;
    }
    const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    const text = new TextDecoder().decode(all);
    const nl = text.indexOf("\n");
    if (nl < 0) return { error: `No reply from ${path}` };
    return { reply: text.slice(0, nl) };
  } finally {
    libc.symbols.close(fd);
  }
}

/**
 * Runs the subcommand.
 * @param args SOCKET OP [PROTO SPEC]
 * @param out writes to standard output
 * @param errOut writes one line to standard error
 * @returns the exit status
 */
export function ctlMain(
  args: string[],
  out: (s: string) => void,
  errOut: (s: string) => void,
): number {
  const [path, ...rest] = args;
  if (path === undefined || path === "-h" || path === "--help") {
    out(CTL_USAGE);
    return path === undefined ? 1 : 0;
  }
  const req = ctlRequestLine(rest);
  if ("error" in req) {
    errOut(`${req.error}\n${CTL_USAGE}`);
    return 1;
  }
  const r = ctlSend(path, req.line);
  if ("error" in r) {
    errOut(`${r.error}\n`);
    return 1;
  }
  let parsed: { ok?: unknown; error?: unknown };
  try {
    parsed = JSON.parse(r.reply);
  } catch {
    errOut(`Malformed reply: ${r.reply.slice(0, 200)}\n`);
    return 1;
  }
  if (parsed.ok !== true) {
    errOut(`${typeof parsed.error === "string" ? parsed.error : "request refused"}\n`);
    return 1;
  }
  out(`${r.reply}\n`);
  return 0;
}
