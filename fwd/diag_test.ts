import assert from "node:assert/strict";
import { diagOpen, diagPorts } from "./diag.ts";
import { scanPorts } from "./scan.ts";
import { libc } from "../ffi/libc.ts";
import { portIsSet } from "../conf/ports.ts";
import { AF_INET, AF_INET6, SOCK_CLOEXEC, SOCK_DGRAM } from "../ffi/layout.ts";

/** A UDP socket bound to 127.0.0.1 or [::] on a port of the kernel's choice. */
function udpBound(v6: boolean): { fd: number; port: number } {
  const fd = libc.symbols.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const sa = new Uint8Array(v6 ? 28 : 16);
  sa[0] = v6 ? AF_INET6 : AF_INET;
  if (!v6) sa.set([127, 0, 0, 1], 4);
  assert.equal(libc.symbols.bind(fd, sa, sa.length), 0);
  const out = new Uint8Array(28);
  libc.symbols.getsockname(fd, out, new Uint8Array(new Uint32Array([28]).buffer));
  return { fd, port: (out[2]! << 8) | out[3]! };
}

Deno.test("diagPorts() lists bound UDP and listening TCP ports, as /proc does", () => {
  const fd = diagOpen();
  assert.ok(fd >= 0, `NETLINK_SOCK_DIAG: errno ${-fd}`);
  const u4 = udpBound(false);
  const u6 = udpBound(true);
  const t4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const p4 = u4.port;
    const p6 = u6.port;
    const pt = (t4.addr as Deno.NetAddr).port;
    const m = new Uint8Array(8192);
    assert.ok(diagPorts(fd, true, m, false) >= 2);
    assert.ok(portIsSet(m, p4) && portIsSet(m, p6));
    assert.ok(!portIsSet(m, pt), "a TCP port is not a UDP port");
    const proc = new Uint8Array(8192);
    scanPorts("/proc/self/net", true, proc, false);
    assert.deepEqual(m, proc, "the same ports as /proc/net/udp[6]");
    diagPorts(fd, true, m, true);
    assert.ok(!portIsSet(m, p4), "loopback-only sockets are left out on request");
    assert.ok(portIsSet(m, p6));
    assert.ok(diagPorts(fd, false, m, false) >= 1);
    assert.ok(portIsSet(m, pt) && !portIsSet(m, p4));
  } finally {
    libc.symbols.close(u4.fd);
    libc.symbols.close(u6.fd);
    t4.close();
    libc.symbols.close(fd);
  }
});
