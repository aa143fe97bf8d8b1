/**
 * table.ts - the flow table: a fixed array of flows (TCP connections, spliced
 * TCP connections, UDP pseudo-connections, ping sequences) whose index is
 * their identity, and the keyed hash that finds a flow from its addresses.
 *
 * # Theory of operation
 *
 * ## Layout
 *
 * A flow has two sides: the initiating side ({@linkcode INISIDE}, where the
 * first packet came from) and the target side ({@linkcode TGTSIDE}, where we
 * forward it). Each side has an interface ("pif", a small number owned by
 * the caller; 0 is {@linkcode PIF_NONE}), and two endpoints as seen from
 * orzo: our address and port on that side ("local", passt's `oaddr`/`oport`)
 * and the peer's ("remote", passt's `eaddr`/`eport`). For a guest connecting
 * out, the initiating side's remote endpoint is the guest socket and its local
 * endpoint is the destination the guest asked for.
 *
 * The common fields are kept struct-of-arrays, in typed arrays allocated once
 * by the constructor: `state[idx]`, `type[idx]`, and per side, indexed by
 * "sidx" = `idx * 2 + side` ({@linkcode flowSidx}): `pif[sidx]`,
 * `lport[sidx]`, `rport[sidx]` and the 16-byte inany addresses (see
 * `inany.ts`) at `laddr[sidx * 16]` and `raddr[sidx * 16]`. Type-specific
 * state (TCP sequence numbers, sockets...) belongs to the protocol modules,
 * in their own arrays indexed by the same flow index. Code outside `flow/`
 * reads these arrays but never writes them: the methods below do.
 *
 * ## Lifecycle
 *
 * Each entry moves through these states (passt's `flow.h`), usually in order;
 * `state[idx]` may always be read:
 *
 * - FREE: in the pool of unused entries.
 *   - {@linkcode FlowTable.flowAlloc} takes the lowest free index and moves it
 *     to NEW.
 * - NEW: allocated, nothing set.
 *   - {@linkcode FlowTable.flowInitiate} sets the initiating side and moves to
 *     INI; {@linkcode FlowTable.flowAllocCancel} returns the entry to FREE.
 *   - Only `state` may be read.
 * - INI: initiating side known.
 *   - {@linkcode FlowTable.flowTarget} sets the target side (after the
 *     forwarding decision, which is not this module's business) and moves to
 *     TGT; `flowAllocCancel` returns the entry to FREE.
 *   - Only the initiating side's fields may be read.
 * - TGT: both sides known.
 *   - {@linkcode FlowTable.flowSetType} sets the type and moves to TYPED;
 *     `flowAllocCancel` returns the entry to FREE.
 *   - Both sides may be read; type-specific state may not be touched.
 * - TYPED: common fields complete, type-specific set-up under way.
 *   - {@linkcode FlowTable.flowActivate} moves to ACTIVE; `flowAllocCancel`
 *     returns the entry to FREE; its sides may be put in the hash table.
 * - ACTIVE: a working flow.
 *   - All fields may be read; {@linkcode FlowTable.flowFree} ends it (moves
 *     it to CLOSED); `flowAllocCancel` may not be used.
 * - CLOSED (orzo's addition): ended by `flowFree`, its sides already out of
 *   the hash table, its slot not yet reusable.
 *   - {@linkcode FlowTable.flowDeferHandler} returns it to FREE.
 *   - Nothing may be read but `state`; events still queued for it are to be
 *     dropped by their handlers (`state[idx] !== FLOW_STATE_ACTIVE`).
 *
 * Caveats, as in passt: at most one entry may be NEW, INI, TGT or TYPED at a
 * time (so `flowAlloc` may not be called again until it is ACTIVE or FREE),
 * and control may not return to the epoll loop while one is: set-up of a flow
 * is one synchronous step. `flowAlloc` and `flowDeferHandler` check this. A
 * violated rule is a programming error and throws; nothing from outside
 * (packets, addresses) can reach a `throw`.
 *
 * ## Deferred freeing
 *
 * `flowFree` removes the flow from the hash table at once (a new connection
 * with the same addresses in the same batch makes a new flow), but its index
 * is only recycled by `flowDeferHandler`, which the main loop calls once per
 * wakeup after all handlers have run. Events of the current `epoll_wait`
 * batch, and timers, refer to flows by index; holding the index back until the
 * batch is done means such a stale reference finds a CLOSED entry, never an
 * unrelated new flow that took its slot. `flowAllocCancel` frees at once: a
 * flow that never became ACTIVE was never visible to the loop.
 *
 * ## Free slots
 *
 * passt keeps free entries as "free clusters" (runs of free entries in a list
 * rebuilt by its once-per-wakeup scan of the whole table), so that it can
 * allocate the lowest free index and keep the table dense for that scan. It
 * can only free an entry during the scan. orzo keeps the goal, allocating the
 * lowest free index so live flows pack at the start of the table and
 * {@linkcode FlowTable.maxUsed} (one past the highest used index) stays low
 * for the loops that walk the table, but with a structure that frees any
 * entry at any time and needs no scan: a hierarchical bitmap of free entries.
 * Level 0 has one bit per entry (1 = free), each higher level one bit per
 * word of the level below (1 = that word has a free entry); the top level is
 * one 32-bit word. Finding the lowest free entry is one count-trailing-zeros
 * per level (four levels for 128k entries), and allocating or freeing flips
 * one bit and propagates up only when a word becomes all zero or stops being
 * so: O(1) in practice, 16.5 KiB at the default capacity. A plain free list
 * would also be O(1) but hands out the most recently freed slot, anywhere in
 * the table, so after a burst of connections the live flows stay scattered up
 * to the burst's high-water mark.
 *
 * `maxUsed` grows on allocation and shrinks (by a backward walk over FREE
 * entries) when the top entry is released. Each step of that walk passes over
 * an entry freed since it was last below `maxUsed`, so the cost is amortised
 * O(1) per free. Walk the active flows without closures:
 *
 * ```ts ignore
 * for (let i = 0; i < t.maxUsed; i++) {
 *   if (t.state[i] !== FLOW_STATE_ACTIVE) continue;
 *   // ...
 * }
 * ```
 *
 * ## Lookup
 *
 * Each side of a flow can be entered in an open-addressing hash table,
 * keyed by (IP protocol, pif, local address, remote address, local port,
 * remote port) of that side; the protocol comes from the flow's type
 * ({@linkcode FLOW_PROTO}). The hash is SipHash-2-4 with a random per-process
 * key (`siphash.ts`), so that bucket positions cannot be predicted by a guest.
 * Buckets are an Int32Array of pairs (sidx + 1, or 0 for empty, so that the
 * pages of buckets never used stay untouched; the full 32-bit hash of that
 * entry), searched by linear probing towards higher indices. The
 * stored hash spares a key comparison for most entries met while probing,
 * and gives each entry's home bucket when deleting; a per-sidx array records
 * the bucket of each inserted side, so removal needs no hashing at all.
 * Deletion is by backward shift (each later entry of the probe run whose home
 * bucket is not between the hole and itself moves into the hole), so there
 * are no tombstones and probe runs never grow with churn.
 *
 * The bucket count is the smallest power of two holding both sides of every
 * flow at no more than {@linkcode FLOW_HASH_LOAD} percent load (passt's figure):
 * 2^19 = 524288 buckets for the default 131071 flows, so 50% at worst, and
 * there is always an empty bucket to end a probe. Expected probes per lookup
 * at load a: about (1 + 1 / (1 - a)) / 2 for a hit, 1.5 at 50%.
 *
 * Nothing on the per-packet path ({@linkcode FlowTable.flowLookup}) or the
 * per-flow path (alloc, initiate, target, activate, free, hash insert and
 * remove) allocates: no objects, closures, BigInts or subarrays. Keys are
 * passed as (buffer, offset) pairs.
 *
 * ## Memory at the default capacity (131071 flows)
 *
 * state + type 256 KiB; pif 256 KiB; addresses 2 x 4 MiB; ports 2 x 512 KiB;
 * hash buckets 4 MiB; bucket of each sidx 1 MiB; pending frees 512 KiB;
 * free bitmap 16.5 KiB: about 15 MiB, all allocated by the constructor, but
 * as address space only. Typed arrays start zeroed in pages the kernel maps
 * on first write, and every array here means "empty" by 0 (FREE, no type, no
 * pif, bucket 0 empty), so the constructor writes nothing but the bitmap:
 * pages become resident as flows use them. Lowest-index allocation keeps the
 * per-flow arrays dense, so their resident part follows the high-water mark
 * of flows; only the hash buckets fill in at random places.
 *
 * Per-flow state whose empty value is not 0 (-1 for "no socket") is set up in
 * chunks of {@linkcode FLOW_PREPARE_CHUNK} entries at that high-water mark:
 * {@linkcode FlowTable.flowOnPrepare} registers a function that initialises a
 * range of entries, called for the entries prepared so far and then whenever
 * {@linkcode FlowTable.flowAlloc} first hands out an index past
 * {@linkcode FlowTable.prepared}. That is rare (once per 1024 flows of new
 * high-water mark) and never on the per-packet path. The table itself uses it
 * for `hashBucket` (-1: not hashed).
 *
 * @module
 */

import { INANY_LEN, inanyFormat } from "./inany.ts";
import { SIPHASH_KEY, siphashFlow } from "./siphash.ts";

/** Bits of a flow index (passt's FLOW_INDEX_BITS). */
export const FLOW_INDEX_BITS = 17;

/** Default capacity of the flow table: 128k - 1 flows, as passt's FLOW_MAX. */
export const FLOW_MAX = (1 << FLOW_INDEX_BITS) - 1;

/**
 * Entries prepared at a time ({@linkcode FlowTable.flowOnPrepare}): 1024
 * flows, a page of a per-flow Int32Array.
 */
export const FLOW_PREPARE_CHUNK = 1024;

/**
 * Initialises the per-flow state of entries `from` to `to - 1` (see
 * {@linkcode FlowTable.flowOnPrepare}).
 */
export type FlowPrepareFn = (from: number, to: number) => void;

/** Number of sides of a flow. */
export const SIDES = 2;
/** Side index of the initiating side. */
export const INISIDE = 0;
/** Side index of the target side. */
export const TGTSIDE = 1;

/** "No flow side": returned by lookups that find nothing. */
export const FLOW_SIDX_NONE: number = -1;

/** Interface number meaning "none"; other pif numbers are the caller's. */
export const PIF_NONE = 0;

/** Maximum load of the lookup hash table, in percent (passt's figure). */
export const FLOW_HASH_LOAD = 70;

/** State: unused entry. */
export const FLOW_STATE_FREE = 0;
/** State: allocated, nothing set. */
export const FLOW_STATE_NEW = 1;
/** State: initiating side set. */
export const FLOW_STATE_INI = 2;
/** State: both sides set. */
export const FLOW_STATE_TGT = 3;
/** State: type set, type-specific set-up under way. */
export const FLOW_STATE_TYPED = 4;
/** State: working flow. */
export const FLOW_STATE_ACTIVE = 5;
/** State: freed by flowFree(), index held until flowDeferHandler(). */
export const FLOW_STATE_CLOSED = 6;
/** Number of flow states. */
export const FLOW_NUM_STATES = 7;

/** Names of the flow states, for logs, indexed by state. */
export const FLOW_STATE_STR: readonly string[] = [
  "FREE",
  "NEW",
  "INI",
  "TGT",
  "TYPED",
  "ACTIVE",
  "CLOSED",
];

/** Type: none (entry not typed yet, or free). */
export const FLOW_TYPE_NONE = 0;
/** Type: TCP connection between a socket and the tap interface. */
export const FLOW_TYPE_TCP = 1;
/** Type: TCP connection between two sockets (spliced). */
export const FLOW_TYPE_TCP_SPLICE = 2;
/** Type: ICMP echo requests and replies. */
export const FLOW_TYPE_PING4 = 3;
/** Type: ICMPv6 echo requests and replies. */
export const FLOW_TYPE_PING6 = 4;
/** Type: UDP pseudo-connection. */
export const FLOW_TYPE_UDP = 5;
/** Number of flow types. */
export const FLOW_NUM_TYPES = 6;

/** Names of the flow types, for logs, indexed by type. */
export const FLOW_TYPE_STR: readonly string[] = [
  "<none>",
  "TCP connection",
  "TCP connection (spliced)",
  "ICMP ping sequence",
  "ICMPv6 ping sequence",
  "UDP flow",
];

/** IP protocol number of each flow type (0 for none), indexed by type. */
export const FLOW_PROTO: Uint8Array = new Uint8Array([0, 6, 6, 1, 58, 17]);

/** Quota group of TCP flows (tap and spliced connections). */
export const FLOW_GROUP_TCP = 0;
/** Quota group of UDP flows. */
export const FLOW_GROUP_UDP = 1;
/** Quota group of ICMP and ICMPv6 ping flows. */
export const FLOW_GROUP_ICMP = 2;
/** Group of untyped entries: no quota. */
export const FLOW_GROUP_NONE = 3;
/** Number of quota groups (FLOW_GROUP_NONE included). */
export const FLOW_NUM_GROUPS = 4;
/** Names of the quota groups, for logs. */
export const FLOW_GROUP_STR: readonly string[] = ["TCP", "UDP", "ICMP", "none"];
/** Quota group of each flow type, indexed by type. */
export const FLOW_GROUP: Uint8Array = new Uint8Array([3, 0, 0, 2, 2, 1]);
/**
 * Default share of the table each group may hold at most, in percent. UDP
 * flows can be made by anyone who reaches a -u port, with any source
 * address: they may never take more than half the table, so that TCP from
 * the guest always has at least the other half (less ICMP's tenth); TCP
 * leaves a tenth to the others, so that a guest with many connections still
 * resolves names.
 */
export const FLOW_QUOTA_PERCENT: readonly number[] = [90, 50, 10, 100];

/**
 * Makes a sidx (flow side index) from a flow index and a side.
 * @param idx flow index
 * @param side INISIDE or TGTSIDE
 * @returns `idx * 2 + side`
 */
export function flowSidx(idx: number, side: number): number {
  return (idx << 1) | side;
}

/**
 * Gives the flow index of a sidx.
 * @param sidx flow side index (not FLOW_SIDX_NONE)
 * @returns the flow index
 */
export function flowSidxIdx(sidx: number): number {
  return sidx >> 1;
}

/**
 * Gives the side of a sidx.
 * @param sidx flow side index (not FLOW_SIDX_NONE)
 * @returns INISIDE or TGTSIDE
 */
export function flowSidxSide(sidx: number): number {
  return sidx & 1;
}

/**
 * Gives the other side of the same flow.
 * @param sidx flow side index
 * @returns the opposite sidx, or FLOW_SIDX_NONE for FLOW_SIDX_NONE
 */
export function flowSidxOpposite(sidx: number): number {
  return sidx < 0 ? FLOW_SIDX_NONE : sidx ^ 1;
}

/**
 * Computes the number of hash buckets for a table capacity: the smallest
 * power of two that holds both sides of `capacity` flows at no more than
 * FLOW_HASH_LOAD percent.
 * @param capacity number of flows
 * @returns the bucket count
 */
export function flowHashSize(capacity: number): number {
  const min = Math.ceil(2 * capacity * 100 / FLOW_HASH_LOAD);
  let size = 1;
  while (size < min) size *= 2;
  return size;
}

/** Options for {@linkcode FlowTable}. */
export interface FlowTableOptions {
  /** Number of flows (default FLOW_MAX); at most 2^30 - 1. */
  capacity?: number;
  /** SipHash key, four 32-bit words (default: the process's random key). */
  hashKey?: Uint32Array;
}

/**
 * Throws for a broken lifecycle rule (a programming error, passt's ASSERT).
 * Kept out of line so that the checks cost one branch on the fast path.
 * @param what description of the violation
 * @param idx flow index concerned
 * @param state the flow's state
 */
function flowBug(what: string, idx: number, state: number): never {
  throw new Error(
    "Flow table misuse: " + what + " (flow " + idx + ", state " +
      (FLOW_STATE_STR[state] ?? String(state)) + ")",
  );
}

/**
 * Count of trailing zeros of a non-zero 32-bit word.
 * @param w the word, not 0
 * @returns index of its lowest set bit
 */
function ctz32(w: number): number {
  return 31 - Math.clz32(w & -w);
}

/**
 * The flow table and its lookup hash. One instance per process in orzo (the
 * context owns it); tests build small ones.
 */
export class FlowTable {
  /** Number of entries. */
  readonly capacity: number;
  /** State of each flow (FLOW_STATE_*), by flow index. */
  readonly state: Uint8Array;
  /** Type of each flow (FLOW_TYPE_*), by flow index. */
  readonly type: Uint8Array;
  /** Interface of each side, by sidx. */
  readonly pif: Uint8Array;
  /** Our (local) address of each side, 16-byte inany at sidx * 16. */
  readonly laddr: Uint8Array;
  /** The endpoint's (remote) address of each side, 16-byte inany at sidx * 16. */
  readonly raddr: Uint8Array;
  /** Our (local) port of each side, by sidx. */
  readonly lport: Uint16Array;
  /** The endpoint's (remote) port of each side, by sidx. */
  readonly rport: Uint16Array;
  /** One past the highest index not FREE: loops over flows stop here. */
  maxUsed = 0;
  /** Number of entries not FREE (CLOSED ones included). */
  used = 0;

  /** Number of hash buckets (a power of two). */
  readonly hashSize: number;
  /** Hash buckets: `[2b]` sidx + 1, or 0 when empty; `[2b + 1]` that entry's hash. */
  readonly hashtab: Int32Array;
  /**
   * Bucket holding each sidx, or -1 when that side is not in the hash table;
   * valid for the entries below `prepared` (the others are FREE).
   */
  readonly hashBucket: Int32Array;
  /**
   * Entries whose per-flow state is initialised: the flow table's high-water
   * mark, rounded up to FLOW_PREPARE_CHUNK (at most the capacity).
   */
  prepared = 0;
  /** Names and functions registered by flowOnPrepare(). */
  readonly #prepareNames: string[] = [];
  readonly #prepareFns: FlowPrepareFn[] = [];
  /** Number of sides in the hash table. */
  hashCount = 0;
  /** The SipHash key of this table. */
  readonly hashKey: Uint32Array;

  readonly #mask: number;
  /** Free bitmap, all levels; level l starts at word #lvlOff[l]. */
  readonly #bits: Int32Array;
  readonly #lvlOff: Int32Array;
  readonly #lvlLen: Int32Array;
  readonly #levels: number;
  /** Flows ended by flowFree() and not yet released. */
  readonly #pending: Int32Array;
  #npending = 0;
  /** The flow being set up (NEW..TYPED), or -1. */
  #newEntry = -1;
  /** Set-ups abandoned by flowSetupAbandon() (a handler failed midway). */
  abandoned = 0;
  /** Entries of each quota group (FLOW_GROUP_*) typed and not yet FREE. */
  readonly groupCount: Int32Array = new Int32Array(FLOW_NUM_GROUPS);
  /** Most entries each quota group may hold (flowAllocFor() refuses beyond). */
  readonly groupMax: Int32Array = new Int32Array(FLOW_NUM_GROUPS);
  /** Allocations refused by flowAllocFor() because the group was at its quota. */
  readonly quotaRefused: Float64Array = new Float64Array(FLOW_NUM_GROUPS);
  /** Allocations refused because no entry was free. */
  fullRefused = 0;

  /**
   * Allocates the table (all typed arrays, once, as zeroed address space) and
   * makes every entry free.
   * @param opts capacity and hash key; both optional
   */
  constructor(opts: FlowTableOptions = {}) {
    const cap = opts.capacity ?? FLOW_MAX;
    if (!Number.isInteger(cap) || cap < 1 || cap > 0x3fffffff) {
      throw new RangeError("Cannot create flow table: capacity " + cap + " out of range");
    }
    const key = opts.hashKey ?? SIPHASH_KEY;
    if (key.length !== 4) {
      throw new RangeError("Cannot create flow table: hash key must be four 32-bit words");
    }
    this.capacity = cap;
    this.hashKey = key;
    this.state = new Uint8Array(cap);
    this.type = new Uint8Array(cap);
    this.pif = new Uint8Array(cap * SIDES);
    this.laddr = new Uint8Array(cap * SIDES * INANY_LEN);
    this.raddr = new Uint8Array(cap * SIDES * INANY_LEN);
    this.lport = new Uint16Array(cap * SIDES);
    this.rport = new Uint16Array(cap * SIDES);
    this.hashSize = flowHashSize(cap);
    this.#mask = this.hashSize - 1;
    this.hashtab = new Int32Array(this.hashSize * 2);
    this.hashBucket = new Int32Array(cap * SIDES);
    this.#pending = new Int32Array(cap);

    let n = cap;
    const lens: number[] = [];
    do {
      n = (n + 31) >>> 5;
      lens.push(n);
    } while (n > 1);
    this.#levels = lens.length;
    this.#lvlOff = new Int32Array(lens.length);
    this.#lvlLen = new Int32Array(lens);
    let total = 0;
    for (let l = 0; l < lens.length; l++) {
      this.#lvlOff[l] = total;
      total += lens[l]!;
    }
    this.#bits = new Int32Array(total);
    for (let g = 0; g < FLOW_NUM_GROUPS; g++) {
      this.groupMax[g] = Math.max(1, Math.floor(cap * FLOW_QUOTA_PERCENT[g]! / 100));
    }
    this.#prepareNames.push("flow table");
    this.#prepareFns.push((from, to) => this.hashBucket.fill(-1, from * SIDES, to * SIDES));
    this.#resetCounts();
  }

  /**
   * Returns the table to its initial state: every entry FREE, hash table
   * empty. Tests only (touches every array; prepared entries stay prepared).
   */
  flowReset(): void {
    this.state.fill(FLOW_STATE_FREE);
    this.type.fill(FLOW_TYPE_NONE);
    this.pif.fill(PIF_NONE);
    this.laddr.fill(0);
    this.raddr.fill(0);
    this.lport.fill(0);
    this.rport.fill(0);
    this.hashtab.fill(0);
    this.hashBucket.fill(-1, 0, this.prepared * SIDES);
    this.#resetCounts();
  }

  /**
   * Registers the initialisation of a module's per-flow state: `fn(from, to)`
   * is called at once for the entries prepared so far (when there are any),
   * then for each new chunk of entries before flowAlloc() first returns an
   * index in it. Registering again under the same name replaces the earlier
   * function (a module started again, in tests).
   * @param name who registers, e.g. "tcp"
   * @param fn initialises entries from..to-1 (e.g. sockets to -1)
   */
  flowOnPrepare(name: string, fn: FlowPrepareFn): void {
    const i = this.#prepareNames.indexOf(name);
    if (i >= 0) this.#prepareFns[i] = fn;
    else {
      this.#prepareNames.push(name);
      this.#prepareFns.push(fn);
    }
    if (this.prepared > 0) fn(0, this.prepared);
  }

  /**
   * Prepares the chunk of entries holding `idx` and those before it: the
   * high-water mark grew (rare: once per FLOW_PREPARE_CHUNK new entries).
   * @param idx the entry about to be allocated (not yet prepared)
   */
  #prepare(idx: number): void {
    const from = this.prepared;
    const to = Math.min(
      this.capacity,
      (Math.floor(idx / FLOW_PREPARE_CHUNK) + 1) * FLOW_PREPARE_CHUNK,
    );
    const fns = this.#prepareFns;
    for (let i = 0; i < fns.length; i++) fns[i]!(from, to);
    this.prepared = to;
  }

  /** Counters, set-up state and free bitmap to "all entries free". */
  #resetCounts(): void {
    this.hashCount = 0;
    this.maxUsed = 0;
    this.used = 0;
    this.#npending = 0;
    this.#newEntry = -1;
    this.groupCount.fill(0);
    // Free bitmap: level 0 has a bit per entry, level l > 0 a bit per word
    // of level l - 1; all set, except the bits past the end of each level.
    let n = this.capacity;
    for (let l = 0; l < this.#levels; l++) {
      const off = this.#lvlOff[l]!;
      const len = this.#lvlLen[l]!;
      for (let w = 0; w < len; w++) {
        const left = n - 32 * w;
        this.#bits[off + w] = left >= 32 ? -1 : (1 << left) - 1;
      }
      n = len;
    }
  }

  /**
   * Finds the lowest free entry in the bitmap.
   * @returns its index, or -1 if there is none
   */
  #bitFirst(): number {
    const bits = this.#bits;
    let l = this.#levels - 1;
    let w = bits[this.#lvlOff[l]!]!;
    if (w === 0) return -1;
    let i = ctz32(w);
    for (l--; l >= 0; l--) {
      w = bits[this.#lvlOff[l]! + i]!;
      i = (i << 5) + ctz32(w);
    }
    return i;
  }

  /**
   * Marks an entry used in the bitmap, clearing summary bits that no
   * longer have a free entry below them.
   * @param idx flow index
   */
  #bitTake(idx: number): void {
    const bits = this.#bits;
    let i = idx;
    for (let l = 0; l < this.#levels; l++) {
      const o = this.#lvlOff[l]! + (i >> 5);
      const w = bits[o]! & ~(1 << (i & 31));
      bits[o] = w;
      if (w !== 0) return;
      i >>= 5;
    }
  }

  /**
   * Marks an entry free in the bitmap, setting summary bits above it.
   * @param idx flow index
   */
  #bitGive(idx: number): void {
    const bits = this.#bits;
    let i = idx;
    for (let l = 0; l < this.#levels; l++) {
      const o = this.#lvlOff[l]! + (i >> 5);
      const w = bits[o]!;
      bits[o] = w | (1 << (i & 31));
      if (w !== 0) return;
      i >>= 5;
    }
  }

  /**
   * Clears an entry's common fields, marks it FREE and returns its index to
   * the free bitmap. Does not touch maxUsed.
   * @param idx flow index
   */
  #release(idx: number): void {
    const s0 = idx << 1;
    this.state[idx] = FLOW_STATE_FREE;
    this.groupCount[FLOW_GROUP[this.type[idx]!]!]!--;
    this.type[idx] = FLOW_TYPE_NONE;
    this.pif[s0] = PIF_NONE;
    this.pif[s0 + 1] = PIF_NONE;
    this.lport[s0] = 0;
    this.lport[s0 + 1] = 0;
    this.rport[s0] = 0;
    this.rport[s0 + 1] = 0;
    const a = s0 * INANY_LEN;
    this.laddr.fill(0, a, a + SIDES * INANY_LEN);
    this.raddr.fill(0, a, a + SIDES * INANY_LEN);
    this.#bitGive(idx);
    this.used--;
  }

  /** Lowers maxUsed past FREE entries at the top of the used range. */
  #shrink(): void {
    let m = this.maxUsed;
    const state = this.state;
    while (m > 0 && state[m - 1] === FLOW_STATE_FREE) m--;
    this.maxUsed = m;
  }

  /**
   * Allocates the lowest free entry and moves it to NEW. Throws if another
   * flow is still being set up (NEW..TYPED): finish or cancel it first.
   * @returns the flow index, or -1 if the table is full
   */
  flowAlloc(): number {
    if (this.#newEntry >= 0) {
      flowBug(
        "flowAlloc() with a flow still being set up",
        this.#newEntry,
        this.state[this.#newEntry]!,
      );
    }
    const idx = this.#bitFirst();
    if (idx < 0) {
      this.fullRefused++;
      return -1;
    }
    if (idx >= this.prepared) this.#prepare(idx);
    this.#bitTake(idx);
    this.groupCount[FLOW_GROUP_NONE]!++;
    this.state[idx] = FLOW_STATE_NEW;
    this.used++;
    if (idx >= this.maxUsed) this.maxUsed = idx + 1;
    this.#newEntry = idx;
    return idx;
  }
  /**
   * Allocates an entry for a flow that will be of `type`, unless that
   * type's quota group already holds groupMax entries (then counted in
   * quotaRefused). The quota is checked, not reserved: the type is set by
   * flowSetType() as usual.
   * @param type FLOW_TYPE_* the flow will have
   * @returns the flow index, or -1 if over quota or the table is full
   */
  flowAllocFor(type: number): number {
    const g = FLOW_GROUP[type] ?? FLOW_GROUP_NONE;
    if (this.groupCount[g]! >= this.groupMax[g]!) {
      this.quotaRefused[g]!++;
      return -1;
    }
    return this.flowAlloc();
  }

  /**
   * Sets the quota of a group.
   * @param group FLOW_GROUP_*
   * @param max most entries the group may hold (at least 1, at most the capacity)
   */
  flowQuotaSet(group: number, max: number): void {
    this.groupMax[group] = Math.max(1, Math.min(this.capacity, Math.floor(max)));
  }

  /**
   * Writes the common fields of one side.
   * @param sidx flow side index
   * @param pif interface of this side
   * @param laddr buffer holding our (local) address, as an inany
   * @param laddrOff where the local address starts in `laddr`
   * @param raddr buffer holding the endpoint (remote) address, as an inany
   * @param raddrOff where the remote address starts in `raddr`
   * @param lport our (local) port
   * @param rport the endpoint's (remote) port
   */
  #sideSet(
    sidx: number,
    pif: number,
    laddr: Uint8Array,
    laddrOff: number,
    raddr: Uint8Array,
    raddrOff: number,
    lport: number,
    rport: number,
  ): void {
    const a = sidx * INANY_LEN;
    const la = this.laddr;
    const ra = this.raddr;
    for (let i = 0; i < INANY_LEN; i++) {
      la[a + i] = laddr[laddrOff + i]!;
      ra[a + i] = raddr[raddrOff + i]!;
    }
    this.pif[sidx] = pif;
    this.lport[sidx] = lport;
    this.rport[sidx] = rport;
  }

  /**
   * Sets the initiating side of a NEW flow and moves it to INI.
   * @param idx flow index, the flow being set up
   * @param pif interface the flow came from (not PIF_NONE)
   * @param laddr buffer holding our (local) address, as an inany: the
   *   destination the initiator addressed
   * @param laddrOff where the local address starts in `laddr`
   * @param raddr buffer holding the endpoint (remote) address, as an inany:
   *   the initiator's source address
   * @param raddrOff where the remote address starts in `raddr`
   * @param lport our (local) port: the destination port
   * @param rport the endpoint's (remote) port: the source port
   */
  flowInitiate(
    idx: number,
    pif: number,
    laddr: Uint8Array,
    laddrOff: number,
    raddr: Uint8Array,
    raddrOff: number,
    lport: number,
    rport: number,
  ): void {
    if (idx !== this.#newEntry || this.state[idx] !== FLOW_STATE_NEW || pif === PIF_NONE) {
      flowBug("flowInitiate() needs the NEW flow and a pif", idx, this.state[idx]!);
    }
    this.#sideSet(idx << 1, pif, laddr, laddrOff, raddr, raddrOff, lport, rport);
    this.state[idx] = FLOW_STATE_INI;
  }

  /**
   * Sets the target side of an INI flow (as decided by the forwarding
   * rules) and moves it to TGT.
   * @param idx flow index, the flow being set up
   * @param pif interface the flow goes to (not PIF_NONE)
   * @param laddr buffer holding our (local) address on the target side, as
   *   an inany: the source we use towards the target
   * @param laddrOff where the local address starts in `laddr`
   * @param raddr buffer holding the target's (remote) address, as an inany
   * @param raddrOff where the remote address starts in `raddr`
   * @param lport our (local) port on the target side (0 if not bound yet)
   * @param rport the target's (remote) port
   */
  flowTarget(
    idx: number,
    pif: number,
    laddr: Uint8Array,
    laddrOff: number,
    raddr: Uint8Array,
    raddrOff: number,
    lport: number,
    rport: number,
  ): void {
    if (idx !== this.#newEntry || this.state[idx] !== FLOW_STATE_INI || pif === PIF_NONE) {
      flowBug("flowTarget() needs the INI flow and a pif", idx, this.state[idx]!);
    }
    this.#sideSet((idx << 1) | 1, pif, laddr, laddrOff, raddr, raddrOff, lport, rport);
    this.state[idx] = FLOW_STATE_TGT;
  }

  /**
   * Sets the type of a TGT flow and moves it to TYPED.
   * @param idx flow index, the flow being set up
   * @param type FLOW_TYPE_* (not FLOW_TYPE_NONE)
   */
  flowSetType(idx: number, type: number): void {
    if (
      idx !== this.#newEntry || this.state[idx] !== FLOW_STATE_TGT ||
      type <= FLOW_TYPE_NONE || type >= FLOW_NUM_TYPES
    ) {
      flowBug("flowSetType() needs the TGT flow and a type", idx, this.state[idx]!);
    }
    this.groupCount[FLOW_GROUP_NONE]!--;
    this.groupCount[FLOW_GROUP[type]!]!++;
    this.type[idx] = type;
    this.state[idx] = FLOW_STATE_TYPED;
  }

  /**
   * Moves a TYPED flow to ACTIVE, ending its set-up: flowAlloc() may be
   * called again.
   * @param idx flow index, the flow being set up
   */
  flowActivate(idx: number): void {
    if (idx !== this.#newEntry || this.state[idx] !== FLOW_STATE_TYPED) {
      flowBug("flowActivate() needs the TYPED flow", idx, this.state[idx]!);
    }
    this.state[idx] = FLOW_STATE_ACTIVE;
    this.#newEntry = -1;
  }

  /**
   * Abandons the flow being set up (NEW, INI, TGT or TYPED): removes any side
   * of it from the hash table and returns the entry to FREE at once.
   * @param idx flow index, the flow being set up
   */
  flowAllocCancel(idx: number): void {
    const st = this.state[idx]!;
    if (idx !== this.#newEntry || st < FLOW_STATE_NEW || st > FLOW_STATE_TYPED) {
      flowBug("flowAllocCancel() needs the flow being set up", idx, st);
    }
    this.flowHashRemove(idx << 1);
    this.flowHashRemove((idx << 1) | 1);
    this.#release(idx);
    this.#newEntry = -1;
    this.#shrink();
  }

  /**
   * Abandons whatever flow set-up is unfinished, for the loop's dispatch
   * boundary: a handler that threw between flowAlloc() and flowActivate()
   * would otherwise leave the table refusing every later flowAlloc().
   * @returns the index of the flow abandoned (now FREE), or -1 if none was
   *   being set up
   */
  flowSetupAbandon(): number {
    const idx = this.#newEntry;
    if (idx < 0) return -1;
    this.flowAllocCancel(idx);
    this.abandoned++;
    return idx;
  }

  /**
   * Ends an ACTIVE flow: removes its sides from the hash table and moves it
   * to CLOSED; flowDeferHandler() makes the entry FREE later. Calling it again
   * on a CLOSED flow does nothing.
   * @param idx flow index
   * @returns true if the flow was ACTIVE, false if it was already CLOSED
   */
  flowFree(idx: number): boolean {
    const st = this.state[idx]!;
    if (st === FLOW_STATE_CLOSED) return false;
    if (st !== FLOW_STATE_ACTIVE) {
      flowBug("flowFree() needs an ACTIVE flow (use flowAllocCancel() during set-up)", idx, st);
    }
    this.flowHashRemove(idx << 1);
    this.flowHashRemove((idx << 1) | 1);
    this.state[idx] = FLOW_STATE_CLOSED;
    this.#pending[this.#npending++] = idx;
    return true;
  }

  /**
   * Deferred work, once per loop wakeup after all handlers: releases the
   * entries of flows ended by flowFree() and lowers maxUsed. Throws if a flow
   * is still being set up (the loop must not wait with one).
   * @returns the number of entries released
   */
  flowDeferHandler(): number {
    if (this.#newEntry >= 0) {
      flowBug(
        "flow set-up not finished at end of cycle",
        this.#newEntry,
        this.state[this.#newEntry]!,
      );
    }
    const n = this.#npending;
    if (n === 0) return 0;
    const pending = this.#pending;
    for (let i = 0; i < n; i++) this.#release(pending[i]!);
    this.#npending = 0;
    this.#shrink();
    return n;
  }

  /**
   * Finds the next ACTIVE flow at or after an index, for closure-free walks:
   * `for (let i = t.flowNextActive(0); i >= 0; i = t.flowNextActive(i + 1))`.
   * @param from first index to consider
   * @returns the index of an ACTIVE flow, or -1 if there is none up to maxUsed
   */
  flowNextActive(from: number): number {
    const state = this.state;
    const end = this.maxUsed;
    for (let i = from; i < end; i++) {
      if (state[i] === FLOW_STATE_ACTIVE) return i;
    }
    return -1;
  }

  /**
   * Computes the lookup hash of a side from the table's fields.
   * @param sidx flow side index
   * @returns the 32-bit hash (signed)
   */
  #sideHash(sidx: number): number {
    const a = sidx * INANY_LEN;
    return siphashFlow(
      this.hashKey,
      FLOW_PROTO[this.type[sidx >> 1]!]!,
      this.pif[sidx]!,
      this.laddr,
      a,
      this.raddr,
      a,
      this.lport[sidx]!,
      this.rport[sidx]!,
    );
  }

  /**
   * Compares the lookup keys of two sides in the table.
   * @param s1 first flow side index
   * @param s2 second flow side index
   * @returns true if protocol, pif, addresses and ports are all equal
   */
  #sidesEqual(s1: number, s2: number): boolean {
    if (
      FLOW_PROTO[this.type[s1 >> 1]!] !== FLOW_PROTO[this.type[s2 >> 1]!] ||
      this.pif[s1] !== this.pif[s2] || this.lport[s1] !== this.lport[s2] ||
      this.rport[s1] !== this.rport[s2]
    ) {
      return false;
    }
    const a1 = s1 * INANY_LEN;
    const a2 = s2 * INANY_LEN;
    const la = this.laddr;
    const ra = this.raddr;
    for (let i = 0; i < INANY_LEN; i++) {
      if (la[a1 + i] !== la[a2 + i] || ra[a1 + i] !== ra[a2 + i]) return false;
    }
    return true;
  }

  /**
   * Enters one side of a TYPED or ACTIVE flow in the lookup table. Throws if
   * the flow is in another state, the side has no pif, or it is already in.
   * @param sidx flow side index
   * @returns true if inserted; false if another side with the same key
   *   (protocol, pif, addresses, ports) is in the table (nothing inserted)
   */
  flowHashInsert(sidx: number): boolean {
    const idx = sidx >> 1;
    const st = this.state[idx]!;
    if (
      (st !== FLOW_STATE_TYPED && st !== FLOW_STATE_ACTIVE) || this.pif[sidx] === PIF_NONE ||
      this.hashBucket[sidx] !== -1
    ) {
      flowBug("flowHashInsert() needs a typed side with a pif, not yet inserted", idx, st);
    }
    const h = this.#sideHash(sidx);
    const tab = this.hashtab;
    const mask = this.#mask;
    let b = h & mask;
    let s = tab[2 * b]!;
    while (s !== 0) {
      if (tab[2 * b + 1] === h && this.#sidesEqual(s - 1, sidx)) return false;
      b = (b + 1) & mask;
      s = tab[2 * b]!;
    }
    tab[2 * b] = sidx + 1;
    tab[2 * b + 1] = h;
    this.hashBucket[sidx] = b;
    this.hashCount++;
    return true;
  }

  /**
   * Removes one side of a flow from the lookup table, shifting later
   * entries of its probe run back so that no tombstone is needed.
   * @param sidx flow side index
   * @returns true if it was in the table, false if not (nothing done)
   */
  flowHashRemove(sidx: number): boolean {
    const bucket = this.hashBucket;
    // not a sidx (FLOW_SIDX_NONE), or its entry not prepared: not inserted
    if (!(sidx >= 0 && sidx < this.prepared * SIDES)) return false;
    let hole = bucket[sidx]!;
    if (hole < 0) return false; // not inserted
    bucket[sidx] = -1;
    this.hashCount--;
    const tab = this.hashtab;
    const mask = this.#mask;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      const s = tab[2 * j]!;
      if (s === 0) break;
      const home = tab[2 * j + 1]! & mask;
      // The entry at j may fill the hole unless its home is in (hole, j]
      // (cyclically): it would then sit before its home bucket.
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        tab[2 * hole] = s;
        tab[2 * hole + 1] = tab[2 * j + 1]!;
        bucket[s - 1] = hole;
        hole = j;
      }
    }
    tab[2 * hole] = 0;
    tab[2 * hole + 1] = 0;
    return true;
  }

  /**
   * Finds the flow side with a given key. Allocates nothing: addresses are
   * read in place.
   * @param proto IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)
   * @param pif interface the packet or socket belongs to
   * @param laddr buffer holding our (local) address, as an inany (for a
   *   packet from the guest: its destination)
   * @param laddrOff where the local address starts in `laddr`
   * @param raddr buffer holding the endpoint (remote) address, as an inany
   *   (for a packet from the guest: its source)
   * @param raddrOff where the remote address starts in `raddr`
   * @param lport our (local) port (for a packet from the guest: its
   *   destination port)
   * @param rport the endpoint's (remote) port (for a packet from the guest:
   *   its source port)
   * @returns the matching sidx, or FLOW_SIDX_NONE (-1)
   */
  flowLookup(
    proto: number,
    pif: number,
    laddr: Uint8Array,
    laddrOff: number,
    raddr: Uint8Array,
    raddrOff: number,
    lport: number,
    rport: number,
  ): number {
    const h = siphashFlow(
      this.hashKey,
      proto,
      pif,
      laddr,
      laddrOff,
      raddr,
      raddrOff,
      lport,
      rport,
    );
    const tab = this.hashtab;
    const mask = this.#mask;
    let b = h & mask;
    let s = tab[2 * b]! - 1;
    while (s >= 0) {
      if (
        tab[2 * b + 1] === h && this.pif[s] === pif && this.lport[s] === lport &&
        this.rport[s] === rport && FLOW_PROTO[this.type[s >> 1]!] === proto &&
        this.#addrMatch(s, laddr, laddrOff, raddr, raddrOff)
      ) {
        return s;
      }
      b = (b + 1) & mask;
      s = tab[2 * b]! - 1;
    }
    return FLOW_SIDX_NONE;
  }

  /**
   * Compares a side's addresses with a key's.
   * @param sidx flow side index
   * @param laddr buffer holding the local address, as an inany
   * @param laddrOff where the local address starts in `laddr`
   * @param raddr buffer holding the remote address, as an inany
   * @param raddrOff where the remote address starts in `raddr`
   * @returns true if both addresses are equal
   */
  #addrMatch(
    sidx: number,
    laddr: Uint8Array,
    laddrOff: number,
    raddr: Uint8Array,
    raddrOff: number,
  ): boolean {
    const a = sidx * INANY_LEN;
    const la = this.laddr;
    const ra = this.raddr;
    for (let i = 0; i < INANY_LEN; i++) {
      if (la[a + i] !== laddr[laddrOff + i] || ra[a + i] !== raddr[raddrOff + i]) return false;
    }
    return true;
  }

  /**
   * The table's counters in one line, for --stats and the exit summary.
   * Allocates: logs only.
   * @returns text such as "flows: 3 in use of 131071 (TCP 2/117963, ...)"
   */
  flowStatsLine(): string {
    let s = "flows: " + this.used + " in use of " + this.capacity + " (";
    for (let g = 0; g < FLOW_GROUP_NONE; g++) {
      s += (g > 0 ? ", " : "") + FLOW_GROUP_STR[g] + " " + this.groupCount[g] + "/" +
        this.groupMax[g];
    }
    s += "); refused at quota: ";
    for (let g = 0; g < FLOW_GROUP_NONE; g++) {
      s += (g > 0 ? ", " : "") + FLOW_GROUP_STR[g] + " " + this.quotaRefused[g];
    }
    return s + "; table full " + this.fullRefused + ", set-ups abandoned " + this.abandoned;
  }

  /**
   * Checks the table's invariants, for tests and fuzzers (walks every entry,
   * bucket and bitmap word: never on the data path):
   * - the free bitmap has an entry's bit set exactly when it is FREE, and
   *   each summary bit exactly when the word below has a free entry;
   * - `used`, `maxUsed` and the quota groups' counts match the states and
   *   types;
   * - every side that is in the hash table is found there by its own key,
   *   in a bucket whose stored hash is its own, with no empty bucket between
   *   its home bucket and it; only TYPED and ACTIVE flows are in it, and
   *   `hashCount` counts the occupied buckets;
   * - no flow is being set up when `idle` is true.
   * Allocates (the report).
   * @param idle whether the caller is between loop cycles (no set-up may be
   *   under way)
   * @returns null when consistent, otherwise a description of the first
   *   fault found
   */
  flowCheck(idle = true): string | null {
    const cap = this.capacity;
    if (idle && this.#newEntry >= 0) return "flow " + this.#newEntry + " still being set up";
    let used = 0;
    let top = 0;
    const groups = new Int32Array(FLOW_NUM_GROUPS);
    const bits = this.#bits;
    for (let i = 0; i < cap; i++) {
      const st = this.state[i]!;
      if (st >= FLOW_NUM_STATES) return "flow " + i + ": state " + st;
      const free = ((bits[this.#lvlOff[0]! + (i >> 5)]! >>> (i & 31)) & 1) === 1;
      if (free !== (st === FLOW_STATE_FREE)) {
        return "flow " + i + ": bitmap says " + (free ? "free" : "used") + ", state " +
          FLOW_STATE_STR[st];
      }
      if (st !== FLOW_STATE_FREE) {
        used++;
        top = i + 1;
        groups[st >= FLOW_STATE_TYPED ? FLOW_GROUP[this.type[i]!]! : FLOW_GROUP_NONE]!++;
      } else if (this.type[i] !== FLOW_TYPE_NONE) return "flow " + i + ": FREE with a type";
      if (i >= this.prepared) {
        if (st !== FLOW_STATE_FREE) return "flow " + i + ": in use, not prepared";
        continue;
      }
      if (st < FLOW_STATE_TYPED || st === FLOW_STATE_CLOSED) {
        for (let side = 0; side < SIDES; side++) {
          if (this.hashBucket[(i << 1) | side] !== -1) {
            return "flow " + i + " (" + FLOW_STATE_STR[st] + "): side " + side + " hashed";
          }
        }
      }
    }
    if (used !== this.used) return "used " + this.used + ", counted " + used;
    if (top > this.maxUsed) return "maxUsed " + this.maxUsed + " below flow " + (top - 1);
    if (idle && this.#npending === 0 && top !== this.maxUsed) {
      return "maxUsed " + this.maxUsed + ", highest entry in use " + (top - 1);
    }
    for (let g = 0; g < FLOW_NUM_GROUPS; g++) {
      if (groups[g] !== this.groupCount[g]) {
        return "group " + FLOW_GROUP_STR[g] + ": count " + this.groupCount[g] + ", counted " +
          groups[g];
      }
    }
    for (let l = 1; l < this.#levels; l++) {
      const below = this.#lvlOff[l - 1]!;
      for (let w = 0; w < this.#lvlLen[l - 1]!; w++) {
        const set = ((bits[this.#lvlOff[l]! + (w >> 5)]! >>> (w & 31)) & 1) === 1;
        if (set !== (bits[below + w] !== 0)) return "bitmap level " + l + ", bit " + w;
      }
    }
    const tab = this.hashtab;
    const mask = this.#mask;
    let occupied = 0;
    for (let b = 0; b < this.hashSize; b++) {
      const s = tab[2 * b]! - 1;
      if (s < 0) continue;
      occupied++;
      const idx = s >> 1;
      if (s >= cap * SIDES) return "bucket " + b + ": sidx " + s + " out of range";
      const st = this.state[idx]!;
      if (st !== FLOW_STATE_TYPED && st !== FLOW_STATE_ACTIVE) {
        return "bucket " + b + ": flow " + idx + " is " + FLOW_STATE_STR[st];
      }
      if (this.hashBucket[s] !== b) return "bucket " + b + ": sidx " + s + " records another";
      const h = this.#sideHash(s);
      if (tab[2 * b + 1] !== h) return "bucket " + b + ": stale hash of sidx " + s;
      for (let p = h & mask; p !== b; p = (p + 1) & mask) {
        if (tab[2 * p] === 0) return "bucket " + b + ": sidx " + s + " after a gap";
      }
      const a = s * INANY_LEN;
      const found = this.flowLookup(
        FLOW_PROTO[this.type[idx]!]!,
        this.pif[s]!,
        this.laddr,
        a,
        this.raddr,
        a,
        this.lport[s]!,
        this.rport[s]!,
      );
      if (found !== s) return "sidx " + s + ": its key finds " + found;
    }
    if (occupied !== this.hashCount) {
      return "hashCount " + this.hashCount + ", buckets in use " + occupied;
    }
    for (let s = 0; s < this.prepared * SIDES; s++) {
      const b = this.hashBucket[s]!;
      if (b !== -1 && tab[2 * b] !== s + 1) return "sidx " + s + ": bucket " + b + " holds another";
    }
    return null;
  }

  /**
   * Describes a flow for logs, in passt's form: initiating side as
   * "remote -> local", then "=>", then target side as "local -> remote".
   * Allocates: logs and tests only.
   * @param idx flow index
   * @param pifNames names of the interfaces, by pif number (default: numbers)
   * @returns text such as
   *   "Flow 3 (TCP connection, ACTIVE): 2 [10.0.0.2]:40000 -> [10.0.0.1]:80 => 1 ..."
   */
  flowDescribe(idx: number, pifNames: readonly string[] = []): string {
    const st = this.state[idx]!;
    let s = "Flow " + idx + " (" + (FLOW_TYPE_STR[this.type[idx]!] ?? "?") + ", " +
      (FLOW_STATE_STR[st] ?? "?") + ")";
    if (st < FLOW_STATE_INI || st === FLOW_STATE_CLOSED) return s;
    const ep = (sidx: number, local: boolean): string => {
      const a = sidx * INANY_LEN;
      return local
        ? "[" + inanyFormat(this.laddr, a) + "]:" + this.lport[sidx]
        : "[" + inanyFormat(this.raddr, a) + "]:" + this.rport[sidx];
    };
    const name = (p: number): string => pifNames[p] ?? String(p);
    const i0 = idx << 1;
    s += ": " + name(this.pif[i0]!) + " " + ep(i0, false) + " -> " + ep(i0, true);
    if (st < FLOW_STATE_TGT) return s + " => ?";
    const i1 = i0 | 1;
    return s + " => " + name(this.pif[i1]!) + " " + ep(i1, true) + " -> " + ep(i1, false);
  }
}
