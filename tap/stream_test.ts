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
  STREAM_BATCH_MAX,
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

/**
 * Shrinks the send buffer of one end and the receive buffer of the other to
 * the kernel's least, so that a few frames fill the pair.
 */
function buffersShrink(sender: number, receiver: number): void {
  const small = new Uint8Array(new Int32Array([4096]).buffer);
  libc.symbols.setsockopt(sender, SOL_SOCKET, SO_SNDBUF, small, 4);
  libc.symbols.setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, small, 4);
}

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
    buffersShrink(p.s.fd, p.peer);
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

/** Frames of `len` bytes laid out in one buffer as TCP does: slot i at i * stride, room first. */
function batch(count: number, len: number, stride: number) {
  const buf = new Uint8Array(count * stride);
  const offs = new Int32Array(count);
  const lens = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    offs[i] = i * stride + 8;
    lens[i] = STREAM_HDR_LEN + len;
    /* byte j of frame i: (i * 31 + j) & 0xff, so that a frame out of place shows */
    for (let j = 0; j < len; j++) buf[offs[i]! + STREAM_HDR_LEN + j] = (i * 31 + j) & 0xff;
  }
  return { buf, offs, lens };
}

/** Checks a stream of frames against batch(): `first` is the index of its first frame. */
function checkFrames(all: Uint8Array, first: number, len: number): number {
  const lens = frames(all);
  assert.ok(lens.every((l) => l === len), `lengths ${lens}`);
  for (let k = 0; k < lens.length; k++) {
    const at = k * (4 + len) + 4;
    for (const j of [0, 1, len >> 1, len - 1]) {
      assert.equal(all[at + j], ((first + k) * 31 + j) & 0xff, `frame ${first + k}, byte ${j}`);
    }
  }
  return lens.length;
}

Deno.test("stream: sendFrames() sends a batch in order with one length each", () => {
  const p = pair();
  try {
    const b = batch(5, 1000, 2048);
    assert.equal(p.s.sendFrames(b.buf, b.offs, b.lens, 5), 5);
    assert.equal(checkFrames(drain(p.peer), 0, 1000), 5);
    /* more than STREAM_BATCH_MAX: the first STREAM_BATCH_MAX go, the caller sends the rest */
    const big = batch(STREAM_BATCH_MAX + 3, 100, 128);
    assert.equal(
      p.s.sendFrames(big.buf, big.offs, big.lens, STREAM_BATCH_MAX + 3),
      STREAM_BATCH_MAX,
    );
    assert.equal(checkFrames(drain(p.peer), 0, 100), STREAM_BATCH_MAX);
    assert.equal(p.s.sendFrames(b.buf, b.offs, b.lens, 0), 0);
    assert.equal(p.s.stats.partialWrites, 0);
  } finally {
    p.close();
  }
});

Deno.test("stream: a batch cut by a full socket commits the frames it covers, keeps the cut tail, refuses the rest; resent later, every frame arrives once, whole, in order", () => {
  const p = pair();
  try {
    buffersShrink(p.s.fd, p.peer);
    const total = 40;
    const len = 9000;
    const b = batch(total, len, 9216);
    /* as TCP: send from the first frame not yet committed, resume on "writable" */
    let next = 0;
    let cuts = 0;
    const parts: Uint8Array[] = [];
    for (let round = 0; round < 2000 && next < total; round++) {
      const count = total - next;
      const r = p.s.sendFrames(b.buf, b.offs.subarray(next), b.lens.subarray(next), count);
      if (r > 0) {
        assert.ok(r <= count);
        if (r < count) {
          /* EAGAIN in the middle of the batch: EPOLLOUT is armed for the rest */
          assert.ok(p.masks.at(-1)! & EPOLLOUT, "EPOLLOUT armed after a short batch");
          cuts++;
        }
        next += r;
      } else {
        assert.equal(r, -11 /* EAGAIN */);
      }
      if (next < total) {
        /* the peer reads, the backend finishes a pending tail first */
        parts.push(drain(p.peer));
        p.s.handler(EPOLLOUT, 0);
      }
    }
    assert.equal(next, total, "every frame was committed in the end");
    assert.ok(cuts >= 1, "at least one batch was cut by the full socket");
    assert.ok(p.s.stats.partialWrites >= 1, "a frame was cut and its tail kept");
    for (let i = 0; i < 100; i++) {
      const d = drain(p.peer);
      parts.push(d);
      p.s.handler(EPOLLOUT, 0);
      if (d.length === 0) break;
    }
    const all = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
    let off = 0;
    for (const x of parts) {
      all.set(x, off);
      off += x.length;
    }
    assert.equal(checkFrames(all, 0, len), total, "once each, none cut, in order");
    assert.ok(p.events.includes("writable"));
    assert.ok(!(p.masks.at(-1)! & EPOLLOUT), "EPOLLOUT disarmed once drained");
  } finally {
    p.close();
  }
});

Deno.test("stream: while a cut frame's tail is pending, a batch is refused whole", () => {
  const p = pair();
  try {
    buffersShrink(p.s.fd, p.peer);
    const b = batch(8, 30000, 32768);
    const r = p.s.sendFrames(b.buf, b.offs, b.lens, 8);
    assert.ok(r >= 1 && r < 8, `sent ${r} of 8`);
    assert.equal(p.s.stats.partialWrites, 1, "the last committed frame was cut");
    const refusedBefore = p.s.stats.refusedFull;
    /* the tail cannot go (nobody reads): nothing of the next batch may be sent */
    assert.equal(p.s.sendFrames(b.buf, b.offs.subarray(r), b.lens.subarray(r), 8 - r), -11);
    assert.equal(p.s.stats.refusedFull, refusedBefore + 1);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) {
      const d = drain(p.peer);
      parts.push(d);
      p.s.handler(EPOLLOUT, 0);
      if (d.length === 0) break;
    }
    const all = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
    let off = 0;
    for (const x of parts) {
      all.set(x, off);
      off += x.length;
    }
    assert.equal(checkFrames(all, 0, 30000), r, "exactly the committed frames, whole");
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
