/**
 * scan.ts - which ports are bound, from /proc/net/{tcp,tcp6,udp,udp6}.
 *
 * Used by automatic forwarding (`-t auto`, pasta's default): the guest's
 * listening ports are read from its namespace's procfs files about once a
 * second. Setup-speed code: it allocates.
 *
 * @module
 */

import { readFileText } from "../ffi/mem.ts";

/** TCP state LISTEN in /proc/net/tcp. */
const TCP_LISTEN = "0A";
/** UDP sockets show state CLOSE (07) when bound and not connected. */
const UDP_UNCONNECTED = "07";

/**
 * Parses a /proc/net/{tcp,udp}[6] table into the set of bound ports.
 * @param text the file's contents
 * @param udp whether it is a UDP table
 * @param out bitmap (8192 bytes) to set the ports in
 * @param skipLoopback leave out sockets bound to loopback addresses only
 * @returns the number of ports found
 */
export function procNetPorts(
  text: string,
  udp: boolean,
  out: Uint8Array,
  skipLoopback: boolean,
): number {
  let n = 0;
  const want = udp ? UDP_UNCONNECTED : TCP_LISTEN;
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== want) continue;
    const local = f[1]!;
    const colon = local.lastIndexOf(":");
    if (colon < 0) continue;
    const port = parseInt(local.slice(colon + 1), 16);
    if (!(port > 0 && port < 65536)) continue;
    if (skipLoopback && isLoopbackHex(local.slice(0, colon))) continue;
    if ((out[port >> 3]! & (1 << (port & 7))) === 0) n++;
    out[port >> 3] = out[port >> 3]! | (1 << (port & 7));
  }
  return n;
}

/** Whether a /proc/net address (little-endian hex words) is loopback. */
function isLoopbackHex(hex: string): boolean {
  if (hex.length === 8) return hex.slice(6, 8) === "7F";
  if (hex.length === 32) {
    return hex === "00000000000000000000000001000000" ||
      (hex.slice(0, 16) === "0000000000000000" && hex.slice(16, 24) === "FFFF0000" &&
        hex.slice(30, 32) === "7F");
  }
  return false;
}

/**
 * Reads the bound ports of a namespace.
 * @param netDir the namespace's procfs net directory, such as /proc/PID/net
 * @param udp UDP (else TCP)
 * @param out bitmap (8192 bytes), cleared first
 * @param skipLoopback leave out sockets bound to loopback addresses only
 * @returns the number of ports, or -1 when the files cannot be read
 */
export function scanPorts(
  netDir: string,
  udp: boolean,
  out: Uint8Array,
  skipLoopback: boolean,
): number {
  out.fill(0);
  let n = 0;
  let read = 0;
  for (const f of udp ? ["udp", "udp6"] : ["tcp", "tcp6"]) {
    try {
      n += procNetPorts(readFileText(`${netDir}/${f}`), udp, out, skipLoopback);
      read++;
    } catch { /* no IPv6, or the namespace is gone */ }
  }
  return read === 0 ? -1 : n;
}
