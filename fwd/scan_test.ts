import assert from "node:assert/strict";
import { procNetPorts } from "./scan.ts";

const TCP =
  `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0F02000A:A2C6 0A02000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`;
const TCP6 =
  `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0
`;

function ports(map: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < 65536; p++) if (map[p >> 3]! & (1 << (p & 7))) out.push(p);
  return out;
}

Deno.test("procNetPorts() finds listening TCP ports, not connected ones", () => {
  const map = new Uint8Array(8192);
  assert.equal(procNetPorts(TCP, false, map, false), 2);
  assert.deepEqual(ports(map), [3306, 8080]);
});

Deno.test("procNetPorts() leaves out loopback-only listeners when asked", () => {
  const map = new Uint8Array(8192);
  procNetPorts(TCP, false, map, true);
  procNetPorts(TCP6, false, map, true);
  assert.deepEqual(ports(map), [22, 8080]);
});

Deno.test("procNetPorts() ignores garbage lines", () => {
  const map = new Uint8Array(8192);
  assert.equal(
    procNetPorts("header\nnot a line\n 0: zz:zz 0 0A\n 1: 00000000:0000 x 0A", false, map, false),
    0,
  );
});
