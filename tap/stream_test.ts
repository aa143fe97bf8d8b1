/**
 * Unit tests of stream.ts: qemu's length-prefixed framing over a real
 * socketpair, without a VM: frames split across reads, several in one read,
 * bad lengths, short writes and a full socket.
 */

import assert from "node:assert/strict";
import { libc } from "../ffi/libc.ts";
import {
  AF_UNIX,
  EPOLLIN,
  EPOLLOUT,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import {
  STREAM_FRAME_MAX,
  STREAM_HDR_LEN,
  type StreamHooks,
  streamListen,
  StreamTap,
} from "./stream.ts";

const SO_SNDBUF = 7;
const SO_RCVBUF = 8;

/** A stream backend on one end of a socketpair, the test holding the other. */
function pair() {
  const sv = new Int32Array(2);
  assert.equal(
    libc.symbols.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, new Uint8Array(sv.buffer)),
    0,
  );
  const got: number[][] = [];
  const events: string[] = [];
  const hooks: StreamHooks = {
    deliver: (buf, _view, off, len) => got.push([...buf.subarray(off, off + len)]),
    closed: (why) => events.push(`closed ${why}`),
    writable: () => events.push("writable"),
    connected: () => events.push("connected"),
  };
  const masks: number[] = [];
  const s = new StreamTap(-1, "", hooks, (_fd, ev) => masks.push(ev));
  s.attach(sv[0]!);
  const peer = sv[1]!;
  const write = (b: Uint8Array) => {
    assert.equal(libc.symbols.write(peer, b as Uint8Array<ArrayBuffer>, b.length), b.length);
  };
  const close = () => {
    libc.symbols.close(peer);
    s.close("test over");
  };
  return { s, peer, got, events, masks, write, close };
}

/** A frame of `len` bytes (byte i = (seed + i) & 0xff) with its 4-byte length. */
function framed(len: number, seed = 0): Uint8Array {
  const b = new Uint8Array(4 + len);
  new DataView(b.buffer).setUint32(0, len);
  for (let i = 0; i < len; i++) b[4 + i] = (seed + i) & 0xff;
  return b;
}

function body(len: number, seed = 0): number[] {
  return Array.from({ length: len }, (_, i) => (seed + i) & 0xff);
}

Deno.test("stream: a frame split anywhere, even inside its length, is delivered once, whole", () => {
  const p = pair();
  try {
    const f = framed(100, 7);
    for (const cut of [1, 2, 3, 4, 5, 50, 103]) {
      p.got.length = 0;
      p.write(f.subarray(0, cut));
      p.s.handler(EPOLLIN, 0);
      assert.equal(p.got.length, 0, `nothing before the rest (cut at ${cut})`);
      p.write(f.subarray(cut));
      p.s.handler(EPOLLIN, 0);
      assert.deepEqual(p.got, [body(100, 7)], `cut at ${cut}`);
    }
    assert.equal(p.s.stats.framesIn, 7);
  } finally {
    p.close();
  }
});

Deno.test("stream: several frames in one read, the last one split, in order", () => {
  const p = pair();
  try {
    const a = framed(60, 1);
    const b = framed(1514, 2);
    const c = framed(STREAM_FRAME_MAX, 3);
    const all = new Uint8Array(a.length + b.length + c.length);
    all.set(a, 0);
    all.set(b, a.length);
    all.set(c, a.length + b.length);
    p.write(all.subarray(0, a.length + b.length + 1000));
    p.s.handler(EPOLLIN, 0);
    assert.deepEqual(p.got.map((g) => g.length), [60, 1514]);
    p.write(all.subarray(a.length + b.length + 1000));
    p.s.handler(EPOLLIN, 0);
    assert.deepEqual(p.got, [body(60, 1), body(1514, 2), body(STREAM_FRAME_MAX, 3)]);
  } finally {
    p.close();
  }
});

Deno.test("stream: a length below an Ethernet header drops that frame only, counted", () => {
  const p = pair();
  try {
    for (const len of [0, 1, 13]) p.write(framed(len, 9));
    p.write(framed(14, 5));
    p.s.handler(EPOLLIN, 0);
    assert.deepEqual(p.got, [body(14, 5)]);
    assert.equal(p.s.stats.shortFrames, 3);
    assert.equal(p.s.fd >= 0, true);
  } finally {
    p.close();
  }
});

Deno.test("stream: a length beyond the largest frame closes the client, counted; sends then fail", () => {
  for (const bad of [STREAM_FRAME_MAX + 1, 0x7fffffff, 0xffffffff]) {
    const p = pair();
    try {
      p.write(framed(20, 1));
      const hdr = new Uint8Array(4);
      new DataView(hdr.buffer).setUint32(0, bad);
      p.write(hdr);
      p.write(new Uint8Array(100));
      p.s.handler(EPOLLIN, 0);
      assert.deepEqual(p.got, [body(20, 1)], "the frame before is delivered");
      assert.equal(p.s.stats.badLengthCloses, 1);
      assert.equal(p.s.fd, -1);
      assert.deepEqual(p.events, ["connected", `closed bad frame length ${bad}`]);
      assert.equal(p.s.send(new Uint8Array(64), 64), -107 /* ENOTCONN */);
    } finally {
      p.close();
    }
  }
});

Deno.test("stream: end of stream closes the client once", () => {
  const p = pair();
  libc.symbols.close(p.peer);
  p.s.handler(EPOLLIN, 0);
  assert.deepEqual(p.events, ["connected", "closed client closed connection"]);
  p.s.close("again");
  assert.equal(p.events.length, 2);
});

/** Reads everything the peer has, non-blocking. */
function drain(fd: number): Uint8Array {
  const out: number[] = [];
  const b = new Uint8Array(1 << 16);
  for (let i = 0; i < 10000; i++) {
    const n = libc.symbols.recv(fd, b, b.length, 0x40 /* MSG_DONTWAIT */);
    if (n <= 0) break;
    for (let j = 0; j < n; j++) out.push(b[j]!);
  }
  return new Uint8Array(out);
}

/** Splits a stream into frames by their lengths; throws on a cut frame. */
function frames(s: Uint8Array): number[] {
  const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
  const lens: number[] = [];
  let off = 0;
  while (off < s.length) {
    const len = dv.getUint32(off);
    assert.ok(off + 4 + len <= s.length, "a frame was cut");
    lens.push(len);
    off += 4 + len;
  }
  return lens;
}

Deno.test("stream: send() writes the length; a short write is finished before anything else", () => {
  const p = pair();
  try {
    const small = new Int32Array([4096]);
    libc.symbols.setsockopt(p.s.fd, SOL_SOCKET, SO_SNDBUF, new Uint8Array(small.buffer), 4);
    libc.symbols.setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, new Uint8Array(small.buffer), 4);
    const frame = new Uint8Array(STREAM_HDR_LEN + 60000);
    for (let i = STREAM_HDR_LEN; i < frame.length; i++) frame[i] = i & 0xff;
    let sent = 0;
    let refused = 0;
    for (let i = 0; i < 50; i++) {
      const r = p.s.send(frame, frame.length);
      if (r === frame.length) sent++;
      else {
        assert.equal(r, -11 /* EAGAIN */);
        refused++;
      }
    }
    assert.ok(sent >= 1 && refused >= 1, `sent ${sent}, refused ${refused}`);
    assert.ok(p.s.stats.partialWrites >= 1, "the socket took part of a frame");
    assert.ok(p.masks.at(-1)! & EPOLLOUT, "EPOLLOUT armed");
    /* the peer reads, the backend finishes the tail, senders may resume */
    const parts: Uint8Array[] = [];
    for (let round = 0; round < 1000; round++) {
      const d = drain(p.peer);
      parts.push(d);
      p.s.handler(EPOLLOUT, 0);
      if (d.length === 0 && p.events.includes("writable")) break;
    }
    parts.push(drain(p.peer));
    const all = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
    let off = 0;
    for (const x of parts) {
      all.set(x, off);
      off += x.length;
    }
    const lens = frames(all);
    assert.equal(lens.length, sent, "every accepted frame arrives whole, none of the refused");
    assert.ok(lens.every((l) => l === 60000));
    assert.equal(all[4 + 59999], (STREAM_HDR_LEN + 59999) & 0xff);
    assert.ok(p.events.includes("writable"));
    assert.ok(!(p.masks.at(-1)! & EPOLLOUT), "EPOLLOUT disarmed once drained");
  } finally {
    p.close();
  }
});

Deno.test("streamListen: binds the given path, refuses one in use, replaces a stale file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "orzo-stream-" });
  try {
    const path = `${dir}/s.socket`;
    const a = streamListen(path);
    assert.equal(a.path, path);
    assert.throws(() => streamListen(path), /already in use/);
    libc.symbols.close(a.fd);
    /* the file stays, nobody listens: taken over */
    const b = streamListen(path);
    assert.equal(b.path, path);
    libc.symbols.close(b.fd);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
