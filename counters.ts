/**
 * counters.ts - a running network's counters as one plain object of numbers
 * (the control socket's `stats`, the library's stats()).
 *
 * It gathers what the modules count already: flows by type and state (a
 * walk of the flow table up to its highest used entry), the tap's frames
 * and drops, and each protocol's own counters. Bytes are counted where a
 * module counts them (the splice path); frames on the tap path.
 *
 * @module
 */

import type { Ctx } from "./ctx.ts";
import type { EventLoop } from "./loop.ts";
import type { Protocols } from "./protocols.ts";
import { StreamTap } from "./tap/stream.ts";
import { FLOW_NUM_STATES, FLOW_NUM_TYPES, FLOW_STATE_STR, FLOW_TYPE_STR } from "./flow/table.ts";

/** A network's counters (see {@linkcode netCounters}). */
export interface NetCounters {
  /** flows in use by type name, and by state name */
  flows: { total: number; byType: Record<string, number>; byState: Record<string, number> };
  /** the tap (or stream) side: frames each way and frames dropped by cause */
  tap: {
    framesIn: number;
    framesOut: number;
    malformed: number;
    unhandled: number;
  };
  /** passt mode's socket (tap/stream.ts StreamStats: clients, frames in, bad lengths), else null */
  stream: Record<string, number> | null;
  /** failures caught at the loop's dispatch boundary */
  handlerFailures: number;
  /** TCP counters (tcp/tcp.ts TcpStats), null when off */
  tcp: Record<string, number> | null;
  /** spliced TCP counters (bytes both ways), null when off */
  splice: Record<string, number> | null;
  /** UDP counters, null when off */
  udp: Record<string, number> | null;
  /** ICMP echo counters, null when off */
  icmp: Record<string, number> | null;
}

/**
 * Reads the counters now.
 * @param c execution context (flow table, tap counters)
 * @param loop the event loop (handler failures)
 * @param p what protoInit() started
 * @returns a fresh object of numbers
 */
export function netCounters(c: Ctx, loop: EventLoop, p: Omit<Protocols, "fwd">): NetCounters {
  const byType = new Array<number>(FLOW_NUM_TYPES).fill(0);
  const byState = new Array<number>(FLOW_NUM_STATES).fill(0);
  const fl = c.flows;
  let total = 0;
  for (let i = 0; i < fl.maxUsed; i++) {
    const st = fl.state[i]!;
    if (st === 0) continue;
    total++;
    byState[st]!++;
    byType[fl.type[i]!]!++;
  }
  const named = (counts: number[], names: readonly string[]) => {
    const o: Record<string, number> = {};
    counts.forEach((n, i) => {
      if (i > 0 && n > 0) o[names[i] ?? `${i}`] = n;
    });
    return o;
  };
  const copy = (o: object | null) => o === null ? null : { ...o } as Record<string, number>;
  const st = c.stats;
  return {
    flows: { total, byType: named(byType, FLOW_TYPE_STR), byState: named(byState, FLOW_STATE_STR) },
    tap: {
      framesIn: st.framesIn,
      framesOut: st.framesOut,
      malformed: st.malformed,
      unhandled: st.unhandled,
    },
    stream: c.tap instanceof StreamTap ? copy(c.tap.stats) : null,
    handlerFailures: loop.failures,
    tcp: copy(p.tcp),
    splice: copy(p.splice),
    udp: copy(p.udp),
    icmp: copy(p.icmp),
  };
}
