/**
 * inject.ts - writes raw Ethernet frames onto an interface (AF_PACKET), to
 * feed orzo malformed input from inside the guest.
 *
 * Usage: deno run --allow-ffi inject.ts IFNAME HEXFRAME...
 * Prints the number of frames sent.
 *
 * @module
 */

import { lib, packetSocket } from "./packet_socket.ts";

const [ifname, ...frames] = Deno.args;
const fd = packetSocket(ifname!);
let sent = 0;
for (const hex of frames) {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  if (lib.symbols.send(fd, b, b.length, 0) === b.length) sent++;
}
console.log(sent);
