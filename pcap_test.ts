import assert from "node:assert/strict";
import {
  PCAP_GLOBAL_HDR_LEN,
  PCAP_LINKTYPE_ETHERNET,
  PCAP_MAGIC,
  PCAP_RECORD_HDR_LEN,
  PCAP_SNAPLEN,
  pcapClose,
  pcapErrors,
  pcapFrame,
  pcapOn,
  pcapOpen,
} from "./pcap.ts";
import { SysError } from "./ffi/errno.ts";
import { LOG_WARN, logSetLevel } from "./log.ts";
import { csumWasmAlloc } from "./wire/checksum.ts";
import { hex } from "./wire/_hex.ts";

/* An ARP request and an ICMP echo request captured on a veth. */
const ARP = hex(`
  ff ff ff ff ff ff 02 00 00 00 00 0a 08 06 00 01 08 00 06 04 00 01
  02 00 00 00 00 0a c0 00 02 01 00 00 00 00 00 00 c0 00 02 02
`);
const PING = hex(`
  02 00 00 00 00 0b 02 00 00 00 00 0a 08 00 45 00 00 54 19 72 40 00 40 01 9d 33
  c0 00 02 01 c0 00 02 02 08 00 7b 1e 21 0b 00 01 e4 48 07 6b 00 00 00 00 a5 4e
  0c 00 00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23
  24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
`);

logSetLevel(LOG_WARN);

interface Record {
  sec: number;
  usec: number;
  caplen: number;
  len: number;
  data: Uint8Array;
}

/** Parses a classic pcap file as written on this (little-endian) host. */
function parse(b: Uint8Array): { snaplen: number; linktype: number; records: Record[] } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(dv.getUint32(0, true), PCAP_MAGIC);
  assert.equal(dv.getUint16(4, true), 2);
  assert.equal(dv.getUint16(6, true), 4);
  assert.equal(dv.getInt32(8, true), 0);
  assert.equal(dv.getUint32(12, true), 0);
  const records: Record[] = [];
  let p = PCAP_GLOBAL_HDR_LEN;
  while (p < b.length) {
    assert.ok(p + PCAP_RECORD_HDR_LEN <= b.length, "record header cut");
    const caplen = dv.getUint32(p + 8, true);
    records.push({
      sec: dv.getUint32(p, true),
      usec: dv.getUint32(p + 4, true),
      caplen,
      len: dv.getUint32(p + 12, true),
      data: b.subarray(p + 16, p + 16 + caplen),
    });
    p += PCAP_RECORD_HDR_LEN + caplen;
  }
  assert.equal(p, b.length);
  return { snaplen: dv.getUint32(16, true), linktype: dv.getUint32(20, true), records };
}

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("pcapFrame() writes records that read back byte for byte", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  const fds = fdCount();
  try {
    const before = Math.floor(Date.now() / 1000);
    pcapOpen(path);
    assert.equal(pcapOn, true);
    const pool = new Uint8Array(4096).fill(0xee);
    pool.set(PING, 1001);
    const wasm = csumWasmAlloc(256)!;
    wasm.set(ARP, 3);
    pcapFrame(ARP, 0, ARP.length);
    pcapFrame(pool.subarray(1), 1000, PING.length); /* at an offset, in a sub-array */
    pcapFrame(wasm, 3, ARP.length); /* in WebAssembly memory */
    pcapFrame(PING, 0, 14); /* a prefix */
    pcapClose();
    assert.equal(pcapOn, false);
    assert.equal(pcapErrors(), 0);
    const after = Math.ceil(Date.now() / 1000);

    const f = parse(await Deno.readFile(path));
    assert.equal(f.snaplen, PCAP_SNAPLEN);
    assert.equal(f.linktype, PCAP_LINKTYPE_ETHERNET);
    assert.equal(f.records.length, 4);
    const want = [ARP, PING, ARP, PING.subarray(0, 14)];
    for (let i = 0; i < 4; i++) {
      const r = f.records[i]!;
      assert.equal(r.caplen, want[i]!.length);
      assert.equal(r.len, want[i]!.length);
      assert.deepEqual(r.data, want[i]);
      assert.ok(r.sec >= before && r.sec <= after, `timestamp ${r.sec} in [${before}, ${after}]`);
      assert.ok(r.usec < 1_000_000);
    }
  } finally {
    pcapClose();
    await Deno.remove(path);
  }
  assert.equal(fdCount(), fds, "no fd leaked");
});

Deno.test("pcapFrame() cuts frames longer than the snapshot length", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    pcapOpen(path);
    const big = new Uint8Array(PCAP_SNAPLEN + 100);
    big.set(PING);
    for (let i = PING.length; i < big.length; i++) big[i] = i & 0xff;
    pcapFrame(big, 0, big.length);
    pcapClose();
    const f = parse(await Deno.readFile(path));
    assert.equal(f.records.length, 1);
    assert.equal(f.records[0]!.caplen, PCAP_SNAPLEN);
    assert.equal(f.records[0]!.len, PCAP_SNAPLEN + 100);
    assert.deepEqual(f.records[0]!.data, big.subarray(0, PCAP_SNAPLEN));
  } finally {
    pcapClose();
    await Deno.remove(path);
  }
});

Deno.test("pcapOpen() truncates an existing file and writes the header once", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    await Deno.writeFile(path, new Uint8Array(1000).fill(1));
    pcapOpen(path);
    pcapFrame(ARP, 0, ARP.length);
    pcapOpen(path); /* reopening closes and truncates */
    pcapFrame(PING, 0, PING.length);
    pcapClose();
    const f = parse(await Deno.readFile(path));
    assert.equal(f.records.length, 1);
    assert.deepEqual(f.records[0]!.data, PING);
  } finally {
    pcapClose();
    await Deno.remove(path);
  }
});

Deno.test("pcapFrame() does nothing when closed or given a bad range", async () => {
  pcapClose();
  pcapFrame(ARP, 0, ARP.length);
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    pcapOpen(path);
    pcapFrame(ARP, 1, ARP.length);
    pcapFrame(ARP, -1, 4);
    pcapFrame(ARP, 0, 0);
    pcapClose();
    assert.equal((await Deno.readFile(path)).length, PCAP_GLOBAL_HDR_LEN);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("pcapOpen() throws SysError for a path it cannot create", () => {
  assert.throws(() => pcapOpen("/nonexistent-dir/x.pcap"), SysError);
  assert.equal(pcapOn, false);
});

Deno.test({
  name: "tshark reads the capture and lists the frames",
  ignore: !hasTshark(),
  fn: async () => {
    const path = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      pcapOpen(path);
      pcapFrame(ARP, 0, ARP.length);
      pcapFrame(PING, 0, PING.length);
      const big = new Uint8Array(70000);
      big.set(PING.subarray(0, 14));
      pcapFrame(big, 0, big.length);
      pcapClose();
      const r = await new Deno.Command("tshark", {
        args: ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.protocols"],
        stderr: "piped",
      }).output();
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
      assert.deepEqual(lines, [
        "42\teth:ethertype:arp",
        "98\teth:ethertype:ip:icmp:data",
        "70000\teth:ethertype:ip",
      ]);
    } finally {
      pcapClose();
      await Deno.remove(path);
    }
  },
});

function hasTshark(): boolean {
  try {
    return new Deno.Command("tshark", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}
