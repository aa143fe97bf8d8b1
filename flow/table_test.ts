/**
 * table_test.ts - tests for the flow table: lifecycle, free-slot
 * management, deferred freeing, and the lookup hash.
 *
 * @module
 */

import assert from "node:assert/strict";
import { INANY_LEN, inanyFrom4, inanyParse } from "./inany.ts";
import { siphashFlow, siphashKeyFromBytes } from "./siphash.ts";
import {
  FLOW_GROUP_ICMP,
  FLOW_GROUP_TCP,
  FLOW_GROUP_UDP,
  FLOW_HASH_LOAD,
  FLOW_MAX,
  FLOW_NUM_STATES,
  FLOW_NUM_TYPES,
  FLOW_PREPARE_CHUNK,
  FLOW_PROTO,
  FLOW_SIDX_NONE,
  FLOW_STATE_ACTIVE,
  FLOW_STATE_CLOSED,
  FLOW_STATE_FREE,
  FLOW_STATE_INI,
  FLOW_STATE_NEW,
  FLOW_STATE_STR,
  FLOW_STATE_TGT,
  FLOW_STATE_TYPED,
  FLOW_TYPE_NONE,
  FLOW_TYPE_PING4,
  FLOW_TYPE_STR,
  FLOW_TYPE_TCP,
  FLOW_TYPE_TCP_SPLICE,
  FLOW_TYPE_UDP,
  flowHashSize,
  flowSidx,
  flowSidxIdx,
  flowSidxOpposite,
  flowSidxSide,
  FlowTable,
  INISIDE,
  TGTSIDE,
} from "./table.ts";

const KEY = siphashKeyFromBytes(new Uint8Array(16).fill(0x42), 0);
const TAP = 1;
const HOST = 2;
const SPLICE = 3;

/** One side's lookup key, as tests build it. */
interface SideKey {
  pif: number;
  la: Uint8Array;
  ra: Uint8Array;
  lp: number;
  rp: number;
}

/** Parses an address into a new 16-byte inany. */
function ip(s: string): Uint8Array {
  const a = new Uint8Array(INANY_LEN);
  assert.ok(inanyParse(s, a, 0), s);
  return a;
}

const KEY_A = ip("192.0.2.1");
const KEY_B = ip("198.51.100.7");

/** A random side key: IPv4 or IPv6 addresses, random ports. */
function randomSide(pif: number): SideKey {
  const la = crypto.getRandomValues(new Uint8Array(INANY_LEN));
  const ra = crypto.getRandomValues(new Uint8Array(INANY_LEN));
  if (Math.random() < 0.5) {
    inanyFrom4(la, 0, la, 12);
    inanyFrom4(ra, 0, ra, 12);
  }
  return {
    pif,
    la,
    ra,
    lp: Math.floor(Math.random() * 65536),
    rp: Math.floor(Math.random() * 65536),
  };
}

/** Allocates a flow and walks it to ACTIVE (or to `upTo`) with the given sides. */
function makeFlow(
  t: FlowTable,
  type: number,
  ini: SideKey,
  tgt: SideKey,
  upTo = FLOW_STATE_ACTIVE,
): number {
  const idx = t.flowAlloc();
  if (idx < 0 || upTo === FLOW_STATE_NEW) return idx;
  t.flowInitiate(idx, ini.pif, ini.la, 0, ini.ra, 0, ini.lp, ini.rp);
  if (upTo === FLOW_STATE_INI) return idx;
  t.flowTarget(idx, tgt.pif, tgt.la, 0, tgt.ra, 0, tgt.lp, tgt.rp);
  if (upTo === FLOW_STATE_TGT) return idx;
  t.flowSetType(idx, type);
  if (upTo === FLOW_STATE_TYPED) return idx;
  t.flowActivate(idx);
  return idx;
}

/** Looks up a side key in the table. */
function lookup(t: FlowTable, proto: number, k: SideKey): number {
  return t.flowLookup(proto, k.pif, k.la, 0, k.ra, 0, k.lp, k.rp);
}

/** A quick ACTIVE TCP flow with random sides. */
function quickFlow(t: FlowTable): number {
  return makeFlow(t, FLOW_TYPE_TCP, randomSide(TAP), randomSide(HOST));
}

/**
 * Checks the hash table's invariants: each entry is reachable from its home
 * bucket without crossing an empty bucket, its stored hash is its key's hash,
 * hashBucket[] agrees with the buckets, and hashCount is right.
 */
function checkHash(t: FlowTable): void {
  const mask = t.hashSize - 1;
  const tab = t.hashtab;
  let count = 0;
  for (let b = 0; b < t.hashSize; b++) {
    const s = tab[2 * b]! - 1;
    if (s < 0) continue;
    count++;
    assert.equal(t.hashBucket[s], b, "hashBucket of sidx " + s);
    const a = s * INANY_LEN;
    const h = siphashFlow(
      t.hashKey,
      FLOW_PROTO[t.type[s >> 1]!]!,
      t.pif[s]!,
      t.laddr,
      a,
      t.raddr,
      a,
      t.lport[s]!,
      t.rport[s]!,
    );
    assert.equal(tab[2 * b + 1], h, "stored hash of sidx " + s);
    for (let x = h & mask; x !== b; x = (x + 1) & mask) {
      assert.ok(tab[2 * x]! > 0, "gap at " + x + " before sidx " + s + " in bucket " + b);
    }
  }
  assert.equal(count, t.hashCount);
  let inserted = 0;
  for (let s = 0; s < t.prepared * 2; s++) {
    const b = t.hashBucket[s]!;
    if (b < 0) continue;
    inserted++;
    assert.equal(tab[2 * b], s + 1);
  }
  assert.equal(inserted, t.hashCount);
}

/** Shuffles an array in place (Fisher-Yates). */
function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

Deno.test("flow name tables match the number of states and types", () => {
  assert.equal(FLOW_STATE_STR.length, FLOW_NUM_STATES);
  assert.equal(FLOW_TYPE_STR.length, FLOW_NUM_TYPES);
  assert.equal(FLOW_PROTO.length, FLOW_NUM_TYPES);
  assert.equal(FLOW_PROTO[FLOW_TYPE_NONE], 0);
  assert.equal(FLOW_PROTO[FLOW_TYPE_TCP], 6);
  assert.equal(FLOW_PROTO[FLOW_TYPE_UDP], 17);
});

Deno.test("flowSidx() and friends pack flow index and side", () => {
  assert.equal(flowSidx(5, INISIDE), 10);
  assert.equal(flowSidx(5, TGTSIDE), 11);
  assert.equal(flowSidxIdx(11), 5);
  assert.equal(flowSidxSide(11), TGTSIDE);
  assert.equal(flowSidxSide(10), INISIDE);
  assert.equal(flowSidxOpposite(10), 11);
  assert.equal(flowSidxOpposite(11), 10);
  assert.equal(flowSidxOpposite(FLOW_SIDX_NONE), FLOW_SIDX_NONE);
  assert.equal(flowSidx(FLOW_MAX - 1, TGTSIDE), 2 * FLOW_MAX - 1);
});

Deno.test("flowHashSize() is a power of two within the load limit", () => {
  assert.equal(flowHashSize(FLOW_MAX), 1 << 19);
  for (const cap of [1, 2, 3, 16, 100, 1000, 4095, 65535, FLOW_MAX]) {
    const size = flowHashSize(cap);
    assert.equal(size & (size - 1), 0, "power of two for " + cap);
    assert.ok(2 * cap * 100 <= size * FLOW_HASH_LOAD, "load for " + cap);
    assert.ok(size === 1 || 2 * cap * 100 > (size / 2) * FLOW_HASH_LOAD, "smallest for " + cap);
  }
});

Deno.test("FlowTable() defaults to FLOW_MAX flows and rejects bad options", () => {
  const t = new FlowTable();
  assert.equal(t.capacity, FLOW_MAX);
  assert.equal(t.hashSize, 1 << 19);
  assert.equal(t.laddr.length, FLOW_MAX * 2 * INANY_LEN);
  assert.throws(() => new FlowTable({ capacity: 0 }), RangeError);
  assert.throws(() => new FlowTable({ capacity: 1.5 }), RangeError);
  assert.throws(() => new FlowTable({ hashKey: new Uint32Array(2) }), RangeError);
});

Deno.test("flowAlloc() hands out the lowest free index and moves it to NEW", () => {
  const t = new FlowTable({ capacity: 100, hashKey: KEY });
  for (let i = 0; i < 40; i++) {
    const idx = t.flowAlloc();
    assert.equal(idx, i);
    assert.equal(t.state[idx], FLOW_STATE_NEW);
    assert.equal(t.maxUsed, i + 1);
    assert.equal(t.used, i + 1);
    t.flowAllocCancel(idx);
    assert.equal(t.state[idx], FLOW_STATE_FREE);
    assert.equal(t.maxUsed, i);
    assert.equal(quickFlow(t), i);
  }
});

Deno.test("flowAlloc() returns -1 when the table is full, at any capacity", () => {
  for (const cap of [1, 31, 32, 33, 64, 1023, 1024, 1025, 33000]) {
    const t = new FlowTable({ capacity: cap, hashKey: KEY });
    for (let i = 0; i < cap; i++) {
      const idx = t.flowAlloc();
      assert.equal(idx, i, "capacity " + cap);
      t.flowInitiate(idx, TAP, KEY_A, 0, KEY_B, 0, 1, 2);
      t.flowTarget(idx, HOST, KEY_A, 0, KEY_B, 0, 3, 4);
      t.flowSetType(idx, FLOW_TYPE_UDP);
      t.flowActivate(idx);
    }
    assert.equal(t.flowAlloc(), -1, "capacity " + cap);
    assert.equal(t.used, cap);
    // Freeing any one entry makes exactly that one available again.
    const victim = Math.floor(cap / 2);
    t.flowFree(victim);
    assert.equal(t.flowAlloc(), -1, "still held until the deferred release");
    assert.equal(t.flowDeferHandler(), 1);
    assert.equal(t.flowAlloc(), victim);
    t.flowAllocCancel(victim);
  }
});
Deno.test("flowAlloc() throws while another flow is being set up", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  for (const upTo of [FLOW_STATE_NEW, FLOW_STATE_INI, FLOW_STATE_TGT, FLOW_STATE_TYPED]) {
    const idx = makeFlow(t, FLOW_TYPE_TCP, randomSide(TAP), randomSide(HOST), upTo);
    assert.equal(t.state[idx], upTo);
    assert.throws(() => t.flowAlloc(), /still being set up/);
    assert.throws(() => t.flowDeferHandler(), /end of cycle/);
    t.flowAllocCancel(idx);
    assert.equal(t.state[idx], FLOW_STATE_FREE);
    assert.equal(t.used, 0);
  }
  assert.equal(t.maxUsed, 0);
});

Deno.test("flowSetupAbandon() frees a set-up left unfinished at any stage, hash included", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  assert.equal(t.flowSetupAbandon(), -1, "nothing being set up");
  for (const upTo of [FLOW_STATE_NEW, FLOW_STATE_INI, FLOW_STATE_TGT, FLOW_STATE_TYPED]) {
    const ini = randomSide(TAP);
    const idx = makeFlow(t, FLOW_TYPE_TCP, ini, randomSide(HOST), upTo);
    if (upTo === FLOW_STATE_TYPED) assert.ok(t.flowHashInsert(idx * 2));
    /* a handler threw here: the loop's recovery hook runs */
    assert.equal(t.flowSetupAbandon(), idx);
    assert.equal(t.state[idx], FLOW_STATE_FREE);
    assert.equal(lookup(t, 6, ini), -1, "side left in the hash table");
    assert.equal(t.flowDeferHandler(), 0, "the end of the cycle does not throw");
    /* and the table serves again */
    const next = quickFlow(t);
    assert.equal(next, idx);
    t.flowFree(next);
    t.flowDeferHandler();
  }
  assert.equal(t.abandoned, 4);
  assert.equal(t.used, 0);
  assert.equal(t.maxUsed, 0);
});

Deno.test("lifecycle transitions out of order throw", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  const a = KEY_A;
  const idx = t.flowAlloc();
  assert.throws(() => t.flowTarget(idx, HOST, a, 0, a, 0, 1, 1), /misuse/);
  assert.throws(() => t.flowSetType(idx, FLOW_TYPE_TCP), /misuse/);
  assert.throws(() => t.flowActivate(idx), /misuse/);
  assert.throws(() => t.flowInitiate(idx, 0, a, 0, a, 0, 1, 1), /misuse/, "PIF_NONE");
  assert.throws(() => t.flowFree(idx), /misuse/, "flowFree() during set-up");
  t.flowInitiate(idx, TAP, a, 0, a, 0, 1, 1);
  assert.throws(() => t.flowInitiate(idx, TAP, a, 0, a, 0, 1, 1), /misuse/);
  assert.throws(() => t.flowHashInsert(flowSidx(idx, INISIDE)), /misuse/, "untyped");
  t.flowTarget(idx, HOST, a, 0, a, 0, 1, 1);
  assert.throws(() => t.flowSetType(idx, FLOW_TYPE_NONE), /misuse/);
  assert.throws(() => t.flowSetType(idx, FLOW_NUM_TYPES), /misuse/);
  t.flowSetType(idx, FLOW_TYPE_TCP);
  t.flowActivate(idx);
  assert.throws(() => t.flowAllocCancel(idx), /misuse/);
  assert.throws(() => t.flowActivate(idx), /misuse/);
  assert.throws(() => t.flowFree(idx + 1), /misuse/, "free of a FREE entry");
});

Deno.test("flowInitiate() and flowTarget() store both sides", () => {
  const t = new FlowTable({ capacity: 4, hashKey: KEY });
  const buf = new Uint8Array(64);
  inanyParse("2001:db8::2", buf, 3);
  inanyParse("2001:db8:2::10", buf, 20);
  inanyParse("198.51.100.2", buf, 40);
  const idx = t.flowAlloc();
  t.flowInitiate(idx, TAP, buf, 20, buf, 3, 443, 51000);
  t.flowTarget(idx, HOST, buf, 40, buf, 40, 0, 443);
  t.flowSetType(idx, FLOW_TYPE_TCP);
  t.flowActivate(idx);
  assert.equal(
    t.flowDescribe(idx, ["none", "TAP", "HOST"]),
    "Flow 0 (TCP connection, ACTIVE): TAP [2001:db8::2]:51000 -> [2001:db8:2::10]:443" +
      " => HOST [198.51.100.2]:0 -> [198.51.100.2]:443",
  );
  const s0 = flowSidx(idx, INISIDE);
  const s1 = flowSidx(idx, TGTSIDE);
  assert.equal(t.pif[s0], TAP);
  assert.equal(t.pif[s1], HOST);
  assert.equal(t.lport[s0], 443);
  assert.equal(t.rport[s0], 51000);
  assert.equal(t.type[idx], FLOW_TYPE_TCP);
  assert.deepEqual(t.laddr.subarray(s0 * 16, s0 * 16 + 16), buf.subarray(20, 36));
  assert.deepEqual(t.raddr.subarray(s0 * 16, s0 * 16 + 16), buf.subarray(3, 19));
  assert.equal(t.flowDescribe(idx + 1), "Flow 1 (<none>, FREE)");
});

Deno.test("flowFree() holds the index until flowDeferHandler() releases it", () => {
  const t = new FlowTable({ capacity: 16, hashKey: KEY });
  for (let i = 0; i < 3; i++) quickFlow(t);
  assert.equal(t.flowFree(1), true);
  assert.equal(t.state[1], FLOW_STATE_CLOSED);
  assert.equal(t.flowFree(1), false, "second flowFree() is a no-op");
  assert.equal(quickFlow(t), 3, "CLOSED index not reused in the same cycle");
  assert.equal(t.used, 4);
  assert.equal(t.flowDeferHandler(), 1);
  assert.equal(t.state[1], FLOW_STATE_FREE);
  assert.equal(t.type[1], FLOW_TYPE_NONE);
  assert.equal(t.pif[2], 0);
  assert.equal(t.used, 3);
  assert.equal(t.flowDeferHandler(), 0);
  assert.equal(quickFlow(t), 1, "lowest free index after the release");
});

Deno.test("maxUsed shrinks when the top flows are released", () => {
  const t = new FlowTable({ capacity: 100, hashKey: KEY });
  for (let i = 0; i < 10; i++) quickFlow(t);
  assert.equal(t.maxUsed, 10);
  t.flowFree(9);
  t.flowFree(7);
  t.flowFree(2);
  assert.equal(t.maxUsed, 10, "CLOSED entries still count");
  t.flowDeferHandler();
  assert.equal(t.maxUsed, 9);
  t.flowFree(8);
  t.flowFree(6);
  t.flowDeferHandler();
  assert.equal(t.maxUsed, 6);
  for (let i = 0; i < 6; i++) {
    if (t.state[i] === FLOW_STATE_ACTIVE) t.flowFree(i);
  }
  t.flowDeferHandler();
  assert.equal(t.maxUsed, 0);
  assert.equal(t.used, 0);
  assert.equal(quickFlow(t), 0);
});

Deno.test("flowNextActive() walks ACTIVE flows only", () => {
  const t = new FlowTable({ capacity: 64, hashKey: KEY });
  for (let i = 0; i < 20; i++) quickFlow(t);
  for (const i of [0, 3, 4, 10, 19]) t.flowFree(i);
  t.flowDeferHandler();
  t.flowFree(5); // CLOSED: skipped too
  const seen: number[] = [];
  for (let i = t.flowNextActive(0); i >= 0; i = t.flowNextActive(i + 1)) seen.push(i);
  assert.deepEqual(seen, [1, 2, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18]);
  const loop: number[] = [];
  for (let i = 0; i < t.maxUsed; i++) if (t.state[i] === FLOW_STATE_ACTIVE) loop.push(i);
  assert.deepEqual(loop, seen);
});

Deno.test("flowAlloc() matches a lowest-free-index model under random churn", () => {
  const cap = 3000; // three bitmap levels
  const t = new FlowTable({ capacity: cap, hashKey: KEY });
  const live = new Set<number>();
  const closed: number[] = [];
  for (let op = 0; op < 30000; op++) {
    const r = Math.random();
    if (r < 0.55) {
      let want = -1;
      for (let i = 0; i < cap; i++) {
        if (!live.has(i) && !closed.includes(i)) {
          want = i;
          break;
        }
      }
      const idx = t.flowAlloc();
      assert.equal(idx, want);
      if (idx >= 0) {
        t.flowInitiate(idx, TAP, KEY_A, 0, KEY_B, 0, 1, 2);
        t.flowTarget(idx, HOST, KEY_A, 0, KEY_B, 0, 3, 4);
        t.flowSetType(idx, FLOW_TYPE_UDP);
        t.flowActivate(idx);
        live.add(idx);
      }
    } else if (r < 0.95 && live.size > 0) {
      const arr = [...live];
      const idx = arr[Math.floor(Math.random() * arr.length)]!;
      t.flowFree(idx);
      live.delete(idx);
      closed.push(idx);
    } else {
      assert.equal(t.flowDeferHandler(), closed.length);
      closed.length = 0;
      let top = 0;
      for (const i of live) top = Math.max(top, i + 1);
      assert.equal(t.maxUsed, top);
    }
    assert.equal(t.used, live.size + closed.length);
  }
});

Deno.test("flowHashInsert() and flowLookup() find each side of a flow", () => {
  const t = new FlowTable({ capacity: 64, hashKey: KEY });
  const ini = {
    pif: TAP,
    la: ip("203.0.113.10"),
    ra: ip("198.51.100.2"),
    lp: 80,
    rp: 40000,
  };
  const tgt = { pif: HOST, la: ip("0.0.0.0"), ra: ip("203.0.113.10"), lp: 50123, rp: 80 };
  const idx = makeFlow(t, FLOW_TYPE_TCP, ini, tgt, FLOW_STATE_TYPED);
  assert.equal(t.flowHashInsert(flowSidx(idx, INISIDE)), true, "TYPED flows may be inserted");
  t.flowActivate(idx);
  assert.equal(t.flowHashInsert(flowSidx(idx, TGTSIDE)), true);
  assert.equal(t.hashCount, 2);
  assert.equal(lookup(t, 6, ini), flowSidx(idx, INISIDE));
  assert.equal(lookup(t, 6, tgt), flowSidx(idx, TGTSIDE));
  assert.equal(lookup(t, 17, ini), FLOW_SIDX_NONE, "protocol is part of the key");
  assert.equal(lookup(t, 6, { ...ini, pif: SPLICE }), FLOW_SIDX_NONE, "pif");
  assert.equal(lookup(t, 6, { ...ini, lp: 81 }), FLOW_SIDX_NONE, "local port");
  assert.equal(lookup(t, 6, { ...ini, rp: 40001 }), FLOW_SIDX_NONE, "remote port");
  assert.equal(lookup(t, 6, { ...ini, la: ini.ra, ra: ini.la }), FLOW_SIDX_NONE, "swapped");
  assert.equal(lookup(t, 6, { ...ini, ra: ip("::ffff:198.51.100.3") }), FLOW_SIDX_NONE);
  assert.equal(lookup(t, 6, { ...ini, ra: ip("::198.51.100.2") }), FLOW_SIDX_NONE, "v4 != v6");
  // Keys read in place at any offset.
  const pkt = new Uint8Array(100);
  pkt.set(ini.la, 7);
  pkt.set(ini.ra, 60);
  assert.equal(t.flowLookup(6, TAP, pkt, 7, pkt, 60, 80, 40000), flowSidx(idx, INISIDE));
  checkHash(t);
});

Deno.test("flowHashInsert() refuses a duplicate key and a second insert", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  const ini = randomSide(TAP);
  const a = makeFlow(t, FLOW_TYPE_TCP, ini, randomSide(HOST));
  const b = makeFlow(t, FLOW_TYPE_TCP, ini, randomSide(HOST));
  const c = makeFlow(t, FLOW_TYPE_UDP, ini, randomSide(HOST));
  const d = makeFlow(t, FLOW_TYPE_TCP_SPLICE, ini, randomSide(HOST));
  assert.equal(t.flowHashInsert(flowSidx(a, INISIDE)), true);
  assert.throws(() => t.flowHashInsert(flowSidx(a, INISIDE)), /misuse/);
  assert.equal(t.flowHashInsert(flowSidx(b, INISIDE)), false, "same key");
  assert.equal(t.hashBucket[flowSidx(b, INISIDE)], -1);
  assert.equal(t.flowHashInsert(flowSidx(c, INISIDE)), true, "UDP is another key");
  assert.equal(t.flowHashInsert(flowSidx(d, INISIDE)), false, "TCP_SPLICE is TCP too");
  assert.equal(lookup(t, 6, ini), flowSidx(a, INISIDE));
  assert.equal(lookup(t, 17, ini), flowSidx(c, INISIDE));
  checkHash(t);
});

Deno.test("flowHashRemove() removes one side; a redundant remove does nothing", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  const ini = randomSide(TAP);
  const tgt = randomSide(HOST);
  const idx = makeFlow(t, FLOW_TYPE_TCP, ini, tgt);
  t.flowHashInsert(flowSidx(idx, INISIDE));
  t.flowHashInsert(flowSidx(idx, TGTSIDE));
  assert.equal(t.flowHashRemove(flowSidx(idx, INISIDE)), true);
  assert.equal(t.flowHashRemove(flowSidx(idx, INISIDE)), false);
  assert.equal(t.flowHashRemove(FLOW_SIDX_NONE), false);
  assert.equal(t.flowHashRemove(2 * t.capacity), false);
  assert.equal(lookup(t, 6, ini), FLOW_SIDX_NONE);
  assert.equal(lookup(t, 6, tgt), flowSidx(idx, TGTSIDE));
  assert.equal(t.hashCount, 1);
  checkHash(t);
});

Deno.test("flowFree() and flowAllocCancel() take the flow out of the hash table", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  const ini = randomSide(TAP);
  const tgt = randomSide(HOST);
  const idx = makeFlow(t, FLOW_TYPE_TCP, ini, tgt);
  t.flowHashInsert(flowSidx(idx, INISIDE));
  t.flowHashInsert(flowSidx(idx, TGTSIDE));
  t.flowFree(idx);
  assert.equal(lookup(t, 6, ini), FLOW_SIDX_NONE, "gone before the deferred release");
  assert.equal(lookup(t, 6, tgt), FLOW_SIDX_NONE);
  assert.equal(t.hashCount, 0);
  // A new flow with the same key may take its place in the same cycle.
  const again = makeFlow(t, FLOW_TYPE_TCP, ini, tgt, FLOW_STATE_TYPED);
  assert.notEqual(again, idx);
  assert.equal(t.flowHashInsert(flowSidx(again, INISIDE)), true);
  assert.equal(lookup(t, 6, ini), flowSidx(again, INISIDE));
  t.flowAllocCancel(again);
  assert.equal(lookup(t, 6, ini), FLOW_SIDX_NONE);
  assert.equal(t.hashCount, 0);
  checkHash(t);
});

Deno.test("flow hash: 100k random flows, half removed in random order", () => {
  const t = new FlowTable();
  const n = 100000;
  const ini: SideKey[] = [];
  const tgt: SideKey[] = [];
  const types: number[] = [];
  const idxs: number[] = [];
  for (let i = 0; i < n; i++) {
    const type = [FLOW_TYPE_TCP, FLOW_TYPE_UDP, FLOW_TYPE_PING4][i % 3]!;
    ini.push(randomSide(TAP));
    tgt.push(randomSide(HOST));
    types.push(type);
    const idx = makeFlow(t, type, ini[i]!, tgt[i]!);
    assert.equal(idx, i);
    idxs.push(idx);
    assert.equal(t.flowHashInsert(flowSidx(idx, INISIDE)), true);
    assert.equal(t.flowHashInsert(flowSidx(idx, TGTSIDE)), true);
  }
  assert.equal(t.hashCount, 2 * n);
  for (let i = 0; i < n; i++) {
    const proto = FLOW_PROTO[types[i]!]!;
    assert.equal(lookup(t, proto, ini[i]!), flowSidx(i, INISIDE));
    assert.equal(lookup(t, proto, tgt[i]!), flowSidx(i, TGTSIDE));
  }
  const order = shuffle([...idxs]);
  const gone = new Set(order.slice(0, n / 2));
  for (const i of order.slice(0, n / 2)) t.flowFree(i);
  assert.equal(t.flowDeferHandler(), n / 2);
  assert.equal(t.hashCount, n);
  for (let i = 0; i < n; i++) {
    const proto = FLOW_PROTO[types[i]!]!;
    const want0 = gone.has(i) ? FLOW_SIDX_NONE : flowSidx(i, INISIDE);
    const want1 = gone.has(i) ? FLOW_SIDX_NONE : flowSidx(i, TGTSIDE);
    assert.equal(lookup(t, proto, ini[i]!), want0);
    assert.equal(lookup(t, proto, tgt[i]!), want1);
  }
  checkHash(t);
  // Refill: the freed indices come back lowest first.
  const freed = [...gone].sort((a, b) => a - b);
  for (let k = 0; k < 1000; k++) assert.equal(quickFlow(t), freed[k]);
});

/** Side keys whose home bucket in a table of `size` buckets is `home`. */
function keysWithHome(t: FlowTable, home: number, count: number, from: number): SideKey[] {
  const mask = t.hashSize - 1;
  const la = ip("10.0.0.1");
  const ra = ip("10.0.0.2");
  const out: SideKey[] = [];
  for (let rp = from; out.length < count; rp++) {
    if ((siphashFlow(t.hashKey, 6, TAP, la, 0, ra, 0, 80, rp) & mask) === home) {
      out.push({ pif: TAP, la, ra, lp: 80, rp });
    }
  }
  return out;
}

Deno.test("flow hash: colliding keys across the end of the table", () => {
  const probe = new FlowTable({ capacity: 16, hashKey: KEY });
  const size = probe.hashSize;
  assert.equal(size, 64);
  // One probe run wrapping from bucket size - 2 to bucket 1.
  const keys = [
    ...keysWithHome(probe, size - 2, 4, 1),
    ...keysWithHome(probe, size - 1, 3, 20000),
    ...keysWithHome(probe, 0, 2, 40000),
    ...keysWithHome(probe, 1, 1, 60000),
  ];
  const other = randomSide(HOST);
  for (let trial = 0; trial < 40; trial++) {
    const t = new FlowTable({ capacity: 16, hashKey: KEY });
    const order = shuffle(keys.map((_, i) => i));
    const idxOf = new Map<number, number>();
    for (const k of order) {
      const idx = makeFlow(t, FLOW_TYPE_TCP, keys[k]!, other);
      idxOf.set(k, idx);
      assert.equal(t.flowHashInsert(flowSidx(idx, INISIDE)), true);
    }
    checkHash(t);
    // All ten in one run: buckets size-2 .. 7 are full, the rest empty.
    for (let b = 0; b < size; b++) {
      const full: boolean = b >= size - 2 || b < keys.length - 2;
      assert.equal(t.hashtab[2 * b]! > 0, full, "bucket " + b);
    }
    const removeOrder = shuffle(keys.map((_, i) => i));
    const removed = new Set<number>();
    for (const k of removeOrder) {
      assert.equal(t.flowHashRemove(flowSidx(idxOf.get(k)!, INISIDE)), true);
      removed.add(k);
      checkHash(t);
      for (let j = 0; j < keys.length; j++) {
        const want = removed.has(j) ? FLOW_SIDX_NONE : flowSidx(idxOf.get(j)!, INISIDE);
        assert.equal(lookup(t, 6, keys[j]!), want, "key " + j + " after removing " + k);
      }
    }
    assert.equal(t.hashCount, 0);
  }
});

Deno.test("flow hash: random insert/remove churn on a small table keeps invariants", () => {
  const cap = 40;
  const t = new FlowTable({ capacity: cap, hashKey: KEY });
  // Keys from a small space so that home buckets collide often.
  const pool: SideKey[] = [];
  const la = ip("10.0.0.1");
  for (let i = 0; i < 300; i++) {
    pool.push({ pif: 1 + (i % 2), la, ra: ip("10.0.1." + (i % 7)), lp: 53, rp: 1000 + i });
  }
  const inTable = new Map<number, number>(); // pool index -> sidx
  const flowOfSidx = new Map<number, number>();
  for (let op = 0; op < 20000; op++) {
    const k = Math.floor(Math.random() * pool.length);
    const sidx = inTable.get(k);
    if (sidx !== undefined) {
      const idx = flowSidxIdx(sidx);
      if (Math.random() < 0.5) {
        assert.equal(t.flowHashRemove(sidx), true);
        t.flowFree(idx);
      } else {
        t.flowFree(idx); // removes both sides itself
      }
      inTable.delete(k);
      flowOfSidx.delete(sidx);
      t.flowDeferHandler();
    } else if (t.used < cap) {
      const idx = makeFlow(t, FLOW_TYPE_UDP, pool[k]!, pool[(k + 1) % pool.length]!);
      const s = flowSidx(idx, INISIDE);
      assert.equal(t.flowHashInsert(s), true);
      inTable.set(k, s);
      flowOfSidx.set(s, k);
    }
    if (op % 50 === 0) {
      checkHash(t);
      for (let j = 0; j < pool.length; j++) {
        assert.equal(lookup(t, 17, pool[j]!), inTable.get(j) ?? FLOW_SIDX_NONE);
      }
    }
  }
  checkHash(t);
});

Deno.test("flowReset() empties the table and the hash", () => {
  const t = new FlowTable({ capacity: 8, hashKey: KEY });
  const k = randomSide(TAP);
  const idx = makeFlow(t, FLOW_TYPE_TCP, k, randomSide(HOST));
  t.flowHashInsert(flowSidx(idx, INISIDE));
  makeFlow(t, FLOW_TYPE_TCP, randomSide(TAP), randomSide(HOST), FLOW_STATE_INI);
  t.flowReset();
  assert.equal(t.used, 0);
  assert.equal(t.maxUsed, 0);
  assert.equal(t.hashCount, 0);
  assert.equal(lookup(t, 6, k), FLOW_SIDX_NONE);
  assert.equal(t.flowAlloc(), 0);
});

Deno.test("flowAllocFor() keeps each protocol within its quota; freed entries count again", () => {
  const t = new FlowTable({ capacity: 100 });
  assert.equal(t.groupMax[FLOW_GROUP_UDP], 50);
  assert.equal(t.groupMax[FLOW_GROUP_TCP], 90);
  assert.equal(t.groupMax[FLOW_GROUP_ICMP], 10);
  const udp: number[] = [];
  for (;;) {
    const idx = t.flowAllocFor(FLOW_TYPE_UDP);
    if (idx < 0) break;
    t.flowInitiate(idx, HOST, ip("10.0.0.1"), 0, ip("10.0.0.2"), 0, 53, udp.length + 1);
    t.flowTarget(idx, TAP, ip("10.0.0.3"), 0, ip("10.0.0.4"), 0, 1, 53);
    t.flowSetType(idx, FLOW_TYPE_UDP);
    t.flowActivate(idx);
    udp.push(idx);
  }
  assert.equal(udp.length, 50, "UDP flows at most half the table");
  assert.equal(t.quotaRefused[FLOW_GROUP_UDP], 1);
  /* TCP still gets the rest of the table */
  let tcp = 0;
  for (let i = 0; i < 50; i++) {
    const idx = t.flowAllocFor(FLOW_TYPE_TCP);
    if (idx < 0) break;
    t.flowInitiate(idx, TAP, ip("10.0.0.1"), 0, ip("10.0.0.2"), 0, 80, i);
    t.flowTarget(idx, HOST, ip("10.0.0.3"), 0, ip("10.0.0.4"), 0, 1, 80);
    t.flowSetType(idx, FLOW_TYPE_TCP);
    t.flowActivate(idx);
    tcp++;
  }
  assert.equal(tcp, 50);
  assert.equal(t.flowAllocFor(FLOW_TYPE_TCP), -1, "table full");
  assert.equal(t.fullRefused, 1);
  assert.equal(t.flowCheck(), null);
  /* an entry freed and released counts against its group no more */
  t.flowFree(udp[0]!);
  assert.equal(t.groupCount[FLOW_GROUP_UDP], 50, "CLOSED still holds its entry");
  t.flowDeferHandler();
  assert.equal(t.groupCount[FLOW_GROUP_UDP], 49);
  const again = t.flowAllocFor(FLOW_TYPE_UDP);
  assert.equal(again, udp[0]);
  t.flowAllocCancel(again);
  assert.equal(t.flowCheck(), null);
  assert.match(
    t.flowStatsLine(),
    /UDP 49\/50.*refused at quota: TCP 0, UDP 1, ICMP 0; table full 1/,
  );
});

Deno.test("flowCheck() passes under churn and names each kind of corruption", () => {
  const t = new FlowTable({ capacity: 300, hashKey: KEY });
  const live: number[] = [];
  for (let round = 0; round < 2000; round++) {
    if (live.length > 0 && (Math.random() < 0.45 || live.length >= 299)) {
      const k = Math.floor(Math.random() * live.length);
      t.flowFree(live[k]!);
      live.splice(k, 1);
    } else {
      const idx = quickFlow(t);
      t.flowHashInsert(flowSidx(idx, INISIDE));
      if (Math.random() < 0.5) t.flowHashInsert(flowSidx(idx, TGTSIDE));
      live.push(idx);
    }
    if (round % 7 === 0) t.flowDeferHandler();
    assert.equal(t.flowCheck(false), null, `round ${round}`);
  }
  t.flowDeferHandler();
  assert.equal(t.flowCheck(), null);
  const idx = live[0]!;
  const sidx = flowSidx(idx, INISIDE);
  /* a key changed behind the hash's back */
  t.lport[sidx] = t.lport[sidx]! ^ 1;
  assert.match(t.flowCheck() ?? "", /stale hash|finds/);
  t.lport[sidx] = t.lport[sidx]! ^ 1;
  assert.equal(t.flowCheck(), null);
  /* a state that disagrees with the free bitmap */
  t.state[idx] = FLOW_STATE_FREE;
  assert.match(t.flowCheck() ?? "", /bitmap says used/);
  t.state[idx] = FLOW_STATE_ACTIVE;
  /* a count off by one */
  t.used++;
  assert.match(t.flowCheck() ?? "", /^used/);
  t.used--;
  /* a flow left half set up */
  const n = t.flowAlloc();
  assert.match(t.flowCheck() ?? "", /being set up/);
  t.flowAllocCancel(n);
  assert.equal(t.flowCheck(), null);
});

Deno.test("flowOnPrepare() initialises per-flow state chunk by chunk at the high-water mark", () => {
  const cap = 2 * FLOW_PREPARE_CHUNK + 10;
  const t = new FlowTable({ capacity: cap, hashKey: KEY });
  assert.equal(t.prepared, 0);
  const sock = new Int32Array(cap);
  const calls: [number, number][] = [];
  t.flowOnPrepare("test", (from, to) => {
    calls.push([from, to]);
    sock.fill(-1, from, to);
  });
  assert.deepEqual(calls, [], "nothing prepared yet");
  const first = quickFlow(t);
  assert.equal(first, 0);
  assert.equal(t.prepared, FLOW_PREPARE_CHUNK);
  assert.deepEqual(calls, [[0, FLOW_PREPARE_CHUNK]]);
  assert.equal(sock[FLOW_PREPARE_CHUNK - 1], -1);
  assert.equal(sock[FLOW_PREPARE_CHUNK], 0, "the next chunk untouched");
  /* a module registered later catches up with what is prepared */
  const late = new Int32Array(cap);
  t.flowOnPrepare("late", (from, to) => late.fill(-1, from, to));
  assert.equal(late[FLOW_PREPARE_CHUNK - 1], -1);
  /* the same name replaces the function: one call per chunk, not two */
  t.flowOnPrepare("late", (from, to) => late.fill(-2, from, to));
  for (let i = 1; i < cap; i++) quickFlow(t);
  assert.equal(t.flowAlloc(), -1, "full");
  assert.equal(t.prepared, cap, "the last chunk stops at the capacity");
  assert.deepEqual(calls, [[0, FLOW_PREPARE_CHUNK], [FLOW_PREPARE_CHUNK, 2 * FLOW_PREPARE_CHUNK], [
    2 * FLOW_PREPARE_CHUNK,
    cap,
  ]]);
  assert.equal(sock.indexOf(0), -1, "every entry prepared once");
  assert.equal(late[cap - 1], -2);
  assert.equal(late[0], -2, "a replacement catches up too");
  assert.equal(t.flowCheck(), null);
});

Deno.test("a new table writes nothing but its free bitmap: its arrays stay zero pages", () => {
  const t = new FlowTable({ hashKey: KEY });
  assert.equal(t.prepared, 0);
  for (const a of [t.state, t.type, t.pif, t.laddr, t.raddr, t.lport, t.rport, t.hashtab]) {
    assert.equal(a.findIndex((v) => v !== 0), -1);
  }
  assert.equal(t.hashBucket.findIndex((v) => v !== 0), -1);
  /* a side never prepared is not in the hash, whatever its (zero) bucket says */
  assert.equal(t.flowHashRemove(flowSidx(FLOW_MAX - 1, INISIDE)), false);
  assert.equal(t.flowCheck(), null);
});
