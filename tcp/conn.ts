/**
 * conn.ts - per-connection state of TCP flows between the tap and host sockets.
 *
 * State is kept struct-of-arrays, indexed by the flow index, allocated once
 * for the whole flow table: nothing is allocated per connection or per
 * segment. Sequence numbers are u32 in Uint32Arrays; compare them only with
 * seqDiff() (mod 2^32).
 *
 * Events (connection milestones, as in the seed's Theory of Operation):
 * setting one of CONN_STATE_BITS clears all the others; the rest accumulate.
 * Flags are conditions that come and go.
 *
 * @module
 */

/** Event: accepted from a listening socket, SYN sent to the guest. */
export const SOCK_ACCEPTED = 1 << 0;
/** Event: SYN received from the guest, host socket connecting. */
export const TAP_SYN_RCVD = 1 << 1;
/** Event: both sides connected. */
export const ESTABLISHED = 1 << 2;
/** Event: SYN-ACK sent to the guest (with TAP_SYN_RCVD). */
export const TAP_SYN_ACK_SENT = 1 << 3;
/** Event: end of file (FIN) from the host socket. */
export const SOCK_FIN_RCVD = 1 << 4;
/** Event: write side of the host socket shut down. */
export const SOCK_FIN_SENT = 1 << 5;
/** Event: FIN received from the guest. */
export const TAP_FIN_RCVD = 1 << 6;
/** Event: FIN sent to the guest. */
export const TAP_FIN_SENT = 1 << 7;
/** Event: the guest acknowledged our FIN. */
export const TAP_FIN_ACKED = 1 << 8;
/** Events that are fundamental states: setting one clears all others. */
export const CONN_STATE_BITS = SOCK_ACCEPTED | TAP_SYN_RCVD | ESTABLISHED;

/** Names of the events, for logs. */
export const TCP_EVENT_NAMES: readonly string[] = [
  "SOCK_ACCEPTED",
  "TAP_SYN_RCVD",
  "ESTABLISHED",
  "TAP_SYN_ACK_SENT",
  "SOCK_FIN_RCVD",
  "SOCK_FIN_SENT",
  "TAP_FIN_RCVD",
  "TAP_FIN_SENT",
  "TAP_FIN_ACKED",
];

/** Flag: an ACK (or window update) is to be sent to the guest after this batch. */
export const ACK_TO_TAP_DUE = 1 << 0;
/** Flag: we wait for the guest to acknowledge something we sent. */
export const ACK_FROM_TAP_DUE = 1 << 1;
/** Flag: queued in the deferred ACK list. */
export const ACK_QUEUED = 1 << 2;
/** Flag: the host socket refused data (its buffer was full). */
export const SOCK_BLOCKED = 1 << 3;
/** Flag: the window we offered was held back by data queued in the socket: watch it drain. */
export const WND_LIMITED = 1 << 4;
/** Flag: the guest's SYN asked for window scaling (so do we). */
export const WS_OK = 1 << 5;
/** Flag: the last read found the socket empty; only a new epoll edge brings more. */
export const SOCK_DRAINED = 1 << 6;
/** Flag: the socket reported end of file (EPOLLRDHUP): a read will find it after the data. */
export const SOCK_HUP = 1 << 7;

/** Flag: SYN from the guest, host connect pending (counted against the half-open cap). */
export const HALF_OPEN = 1 << 8;

/** Names of the flags, for logs. */
export const TCP_FLAG_NAMES: readonly string[] = [
  "ACK_TO_TAP_DUE",
  "ACK_FROM_TAP_DUE",
  "ACK_QUEUED",
  "SOCK_BLOCKED",
  "WND_LIMITED",
  "WS_OK",
  "SOCK_DRAINED",
  "SOCK_HUP",
  "HALF_OPEN",
];

/**
 * Difference of two sequence numbers, mod 2^32, as a signed 32-bit number.
 * @param a sequence number
 * @param b sequence number
 * @returns a - b: negative when a is before b
 */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** State of all TCP connections, by flow index. */
export class TcpConns {
  /** host socket fd, -1 when none */
  readonly sock: Int32Array;
  /** events (SOCK_ACCEPTED ... TAP_FIN_ACKED) */
  readonly events: Uint16Array;
  /** flags (ACK_TO_TAP_DUE ...) */
  readonly flags: Uint16Array;
  /** which flow side (0 or 1) is the guest's */
  readonly tapSide: Uint8Array;
  /** 1 for IPv6 */
  readonly v6: Uint8Array;
  /** next sequence number we send to the guest */
  readonly seqToTap: Uint32Array;
  /** last acknowledgement number received from the guest */
  readonly seqAckFromTap: Uint32Array;
  /** next sequence number expected from the guest */
  readonly seqFromTap: Uint32Array;
  /** last acknowledgement number sent to the guest */
  readonly seqAckToTap: Uint32Array;
  /** the guest's window in bytes (scaled) */
  readonly wndFromTap: Uint32Array;
  /** the guest's window scale shift */
  readonly wsFromTap: Uint8Array;
  /** our window scale shift towards the guest */
  readonly wsToTap: Uint8Array;
  /** the window we last advertised, in bytes */
  readonly wndToTap: Uint32Array;
  /** largest payload per segment to the guest (its MSS) */
  readonly mss: Uint32Array;
  /** duplicate ACKs seen in a row */
  readonly dupAcks: Uint8Array;
  /** retransmissions after timeouts in a row */
  readonly retrans: Uint8Array;
  /** when the guest last acknowledged progress, or we started waiting (ms) */
  readonly tsAck: Float64Array;
  /** last activity on either side (ms) */
  readonly tsAct: Float64Array;

  /**
   * Allocates the arrays, zeroed: their pages become resident as flows use
   * them. `sock` is -1 ("none") only from {@linkcode TcpConns.prepare} on.
   * @param capacity number of flows (the flow table's capacity)
   */
  constructor(capacity: number) {
    this.sock = new Int32Array(capacity);
    this.events = new Uint16Array(capacity);
    this.flags = new Uint16Array(capacity);
    this.tapSide = new Uint8Array(capacity);
    this.v6 = new Uint8Array(capacity);
    this.seqToTap = new Uint32Array(capacity);
    this.seqAckFromTap = new Uint32Array(capacity);
    this.seqFromTap = new Uint32Array(capacity);
    this.seqAckToTap = new Uint32Array(capacity);
    this.wndFromTap = new Uint32Array(capacity);
    this.wsFromTap = new Uint8Array(capacity);
    this.wsToTap = new Uint8Array(capacity);
    this.wndToTap = new Uint32Array(capacity);
    this.mss = new Uint32Array(capacity);
    this.dupAcks = new Uint8Array(capacity);
    this.retrans = new Uint8Array(capacity);
    this.tsAck = new Float64Array(capacity);
    this.tsAct = new Float64Array(capacity);
  }

  /**
   * Initialises the slots of flows the table is about to hand out for the
   * first time (registered with the flow table's flowOnPrepare()).
   * @param from first flow index
   * @param to one past the last
   */
  prepare(from: number, to: number): void {
    this.sock.fill(-1, from, to);
  }

  /**
   * Resets a slot for a new connection.
   * @param idx flow index
   */
  reset(idx: number): void {
    this.sock[idx] = -1;
    this.events[idx] = 0;
    this.flags[idx] = 0;
    this.dupAcks[idx] = 0;
    this.retrans[idx] = 0;
    this.wndToTap[idx] = 0;
  }

  /**
   * Records an event; one of CONN_STATE_BITS replaces all others.
   * @param idx flow index
   * @param ev the event bit
   */
  event(idx: number, ev: number): void {
    if (ev & CONN_STATE_BITS) this.events[idx] = ev;
    else this.events[idx] = this.events[idx]! | ev;
  }

  /**
   * Describes a connection's events and flags, for logs (allocates).
   * @param idx flow index
   * @returns text such as "ESTABLISHED|TAP_FIN_RCVD [ACK_TO_TAP_DUE]"
   */
  describe(idx: number): string {
    const ev = TCP_EVENT_NAMES.filter((_, i) => this.events[idx]! & (1 << i)).join("|");
    const fl = TCP_FLAG_NAMES.filter((_, i) => this.flags[idx]! & (1 << i)).join("|");
    return `${ev || "CLOSED"} [${fl}]`;
  }
}
