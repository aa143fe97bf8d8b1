/**
 * table_bench.ts - micro-benchmarks of the flow table's hot operations:
 * `deno bench flow/table_bench.ts` (not part of the tests).
 *
 * A default-capacity table is filled with 100k flows (both sides hashed, so
 * 200k entries in 2^19 buckets, 38% load), then lookups (hits and misses),
 * hash insert/remove pairs, whole flow set-up/tear-down cycles and the bare
 * SipHash are timed, one operation per iteration.
 *
 * @module
 */

import { INANY_LEN, inanyFrom4 } from "./inany.ts";
import { SIPHASH_KEY, siphashFlow } from "./siphash.ts";
import { FLOW_TYPE_TCP, flowSidx, FlowTable, INISIDE, TGTSIDE } from "./table.ts";

const TAP = 1;
const HOST = 2;
const N = 100000;

const t = new FlowTable();
/** Keys of the initiating sides: addresses at i * 16, ports by index. */
const la = new Uint8Array(N * INANY_LEN);
const ra = new Uint8Array(N * INANY_LEN);
const lp = new Uint16Array(N);
const rp = new Uint16Array(N);
/**
 * Fills a buffer with random bytes, 64 KiB at a time (the API's limit).
 * @param b buffer to fill
 */
function fillRandom(b: Uint8Array): void {
  for (let o = 0; o < b.length; o += 65536) {
    crypto.getRandomValues(b.subarray(o, Math.min(b.length, o + 65536)));
  }
}
fillRandom(la);
fillRandom(ra);
fillRandom(new Uint8Array(lp.buffer));
fillRandom(new Uint8Array(rp.buffer));
for (let i = 0; i < N; i++) {
  if (i % 2 === 0) {
    inanyFrom4(la, i * INANY_LEN, la, i * INANY_LEN + 12);
    inanyFrom4(ra, i * INANY_LEN, ra, i * INANY_LEN + 12);
  }
  const idx = t.flowAlloc();
  const a = i * INANY_LEN;
  t.flowInitiate(idx, TAP, la, a, ra, a, lp[i]!, rp[i]!);
  t.flowTarget(idx, HOST, ra, a, la, a, rp[i]!, lp[i]!);
  t.flowSetType(idx, FLOW_TYPE_TCP);
  t.flowActivate(idx);
  t.flowHashInsert(flowSidx(idx, INISIDE));
  t.flowHashInsert(flowSidx(idx, TGTSIDE));
}

let i = 0;
let sink = 0;

Deno.bench("siphashFlow()", () => {
  const a = i * INANY_LEN;
  sink ^= siphashFlow(SIPHASH_KEY, 6, TAP, la, a, ra, a, lp[i]!, rp[i]!);
  if (++i === N) i = 0;
});

Deno.bench("flowLookup() hit, 200k entries", { baseline: true }, () => {
  const a = i * INANY_LEN;
  sink ^= t.flowLookup(6, TAP, la, a, ra, a, lp[i]!, rp[i]!);
  if (++i === N) i = 0;
});

Deno.bench("flowLookup() miss, 200k entries", () => {
  const a = i * INANY_LEN;
  sink ^= t.flowLookup(17, TAP, la, a, ra, a, lp[i]!, rp[i]!);
  if (++i === N) i = 0;
});

Deno.bench("flowHashRemove() + flowHashInsert(), 200k entries", () => {
  const s = flowSidx(i, INISIDE);
  t.flowHashRemove(s);
  t.flowHashInsert(s);
  if (++i === N) i = 0;
});

Deno.bench("flow set-up and tear-down: alloc..activate, 2 inserts, free, defer", () => {
  const a = i * INANY_LEN;
  const idx = t.flowAlloc();
  // Same addresses as flow i, on another pif, so the keys are new.
  t.flowInitiate(idx, 3, la, a, ra, a, lp[i]!, rp[i]!);
  t.flowTarget(idx, 4, ra, a, la, a, rp[i]!, lp[i]!);
  t.flowSetType(idx, FLOW_TYPE_TCP);
  t.flowActivate(idx);
  t.flowHashInsert(flowSidx(idx, INISIDE));
  t.flowHashInsert(flowSidx(idx, TGTSIDE));
  t.flowFree(idx);
  t.flowDeferHandler();
  if (++i === N) i = 0;
});

addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // keeps `sink` observable
});
