/**
 * netlink_parse.ts - rtnetlink replies: split, attributes, links, addresses,
 * routes, errors, and the collector of one request's reply.
 *
 * Replies are untrusted input: every length is checked before it is used,
 * and a malformed message raises a `SysError` with errno `EBADMSG` (message
 * "Malformed netlink message: ...") instead of reading out of bounds or
 * looping. Parsed addresses are copies; `NlMsg.bytes` are views.
 *
 * @module
 */

import { ERRNO, SysError } from "./errno.ts";
import { AF_INET, AF_INET6 } from "./layout.ts";
import {
  IFA_ADDRESS,
  IFA_BROADCAST,
  IFA_CACHEINFO,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  IFADDRMSG_SIZE,
  IFINFOMSG_SIZE,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_LINK,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  nlAlign,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLMSGERR_ATTR_MSG,
  RTA_DST,
  RTA_GATEWAY,
  RTA_HDRLEN,
  RTA_MULTIPATH,
  RTA_NH_ID,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTMSG_SIZE,
  RTNH_SIZE,
} from "./netlink_const.ts";

const decoder = new TextDecoder();

/**
 * Builds the error thrown for malformed replies.
 * @param detail what is wrong
 * @returns a SysError with errno EBADMSG
 */
export function nlMalformed(detail: string): SysError {
  return new SysError(`Malformed netlink message: ${detail}`, ERRNO.EBADMSG);
}

/** A failure reported by the kernel in NLMSG_ERROR (or NLMSG_DONE). */
export class NlError extends SysError {
  /** the kernel's extended-ack text, when it sent one */
  readonly extAck: string | null;

  /**
   * Builds the error for a refused request.
   * @param op request name, such as "RTM_NEWADDR"
   * @param err errno (either sign)
   * @param extAck extended-ack message, or null
   */
  constructor(op: string, err: number, extAck: string | null = null) {
    super(op, err);
    this.name = "NlError";
    this.extAck = extAck;
    if (extAck !== null && extAck !== "") this.message += ` (${extAck})`;
  }
}

/**
 * Formats an address for messages: dotted quad, or RFC 5952 IPv6 text.
 * @param addr 4 or 16 bytes
 * @returns its text form (hex bytes for other lengths)
 */
export function nlAddrToString(addr: Uint8Array): string {
  if (addr.length === 4) return addr.join(".");
  if (addr.length !== 16) return Array.from(addr, (b) => b.toString(16).padStart(2, "0")).join("");
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((addr[i]! << 8) | addr[i + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (bestAt < 0) return hex(w);
  return `${hex(w.slice(0, bestAt))}::${hex(w.slice(bestAt + bestLen))}`;
}

/** One netlink message inside a received datagram. */
export interface NlMsg {
  /** nlmsg_type */
  type: number;
  /** nlmsg_flags */
  flags: number;
  /** nlmsg_seq */
  seq: number;
  /** nlmsg_pid */
  pid: number;
  /** the whole message, header included, exactly nlmsg_len bytes */
  bytes: Uint8Array;
}

/**
 * Splits a datagram into messages, checking every nlmsg_len.
 * @param buf the received bytes
 * @returns the messages (views into `buf`)
 * @throws SysError EBADMSG when a length is below the header size or beyond the datagram
 */
export function nlSplit(buf: Uint8Array): NlMsg[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlMsg[] = [];
  let off = 0;
  while (off < buf.length) {
    const left = buf.length - off;
    if (left < NLMSG_HDRLEN) throw nlMalformed(`${left} trailing bytes, less than a header`);
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN) throw nlMalformed(`nlmsg_len ${len} smaller than the header`);
    if (len > left) throw nlMalformed(`nlmsg_len ${len} beyond the ${left} bytes received`);
    out.push({
      type: dv.getUint16(off + 4, true),
      flags: dv.getUint16(off + 6, true),
      seq: dv.getUint32(off + 8, true),
      pid: dv.getUint32(off + 12, true),
      bytes: buf.subarray(off, off + len),
    });
    off += nlAlign(len);
  }
  return out;
}

/** One attribute: type (flag bits masked off) and a view of its payload. */
export interface NlAttr {
  /** rta_type & NLA_TYPE_MASK */
  type: number;
  /** payload (rta_len - 4 bytes) */
  data: Uint8Array;
}

/**
 * Parses the attributes in `buf[off, end)`. Up to 3 trailing bytes are
 * ignored, as RTA_OK does.
 * @param buf bytes holding the attributes
 * @param off where the first attribute starts
 * @param end where the attribute area ends
 * @returns the attributes, in order
 * @throws SysError EBADMSG when rta_len is below 4 or runs past `end`
 */
export function nlParseAttrs(buf: Uint8Array, off: number, end: number): NlAttr[] {
  if (off < 0 || end > buf.length || off > end) {
    throw nlMalformed(`attribute area ${off}..${end} outside ${buf.length} bytes`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlAttr[] = [];
  while (end - off >= RTA_HDRLEN) {
    const len = dv.getUint16(off, true);
    const type = dv.getUint16(off + 2, true) & 0x3fff;
    if (len < RTA_HDRLEN) throw nlMalformed(`attribute ${type} with rta_len ${len}`);
    if (len > end - off) {
      throw nlMalformed(`attribute ${type} rta_len ${len} beyond the ${end - off} bytes left`);
    }
    out.push({ type, data: buf.subarray(off + RTA_HDRLEN, off + len) });
    off += nlAlign(len);
  }
  return out;
}

function attrU32(a: NlAttr, what: string): number {
  if (a.data.length < 4) throw nlMalformed(`${what} attribute of ${a.data.length} bytes`);
  return new DataView(a.data.buffer, a.data.byteOffset, 4).getUint32(0, true);
}

function attrAddr(a: NlAttr, family: number, what: string): Uint8Array {
  const want = family === AF_INET ? 4 : family === AF_INET6 ? 16 : a.data.length;
  if (a.data.length !== want) {
    throw nlMalformed(`${what} attribute of ${a.data.length} bytes for family ${family}`);
  }
  return a.data.slice();
}

function attrString(a: NlAttr): string {
  let end = a.data.indexOf(0);
  if (end < 0) end = a.data.length;
  return decoder.decode(a.data.subarray(0, end));
}

function bodyView(m: NlMsg, size: number, what: string): DataView {
  if (m.bytes.length < NLMSG_HDRLEN + size) {
    throw nlMalformed(`${what} message of ${m.bytes.length} bytes, needs ${NLMSG_HDRLEN + size}`);
  }
  return new DataView(m.bytes.buffer, m.bytes.byteOffset + NLMSG_HDRLEN, size);
}

/** A link, from RTM_NEWLINK. */
export interface NlLink {
  /** interface index */
  index: number;
  /** ARPHRD_* type */
  type: number;
  /** IFF_* flags */
  flags: number;
  /** name ("" when absent) */
  name: string;
  /** MTU (0 when absent) */
  mtu: number;
  /** hardware address, or null (no L2 address, e.g. tun) */
  mac: Uint8Array | null;
  /** index of the lower link (veth peer, vlan parent), 0 if none */
  link: number;
  /** index of the master device, 0 if none */
  master: number;
  /** RFC 2863 operational state (IF_OPER_*), 0 unknown */
  operstate: number;
}

/**
 * Parses RTM_NEWLINK.
 * @param m the message
 * @returns the link
 * @throws SysError EBADMSG when malformed
 */
export function nlParseLink(m: NlMsg): NlLink {
  const dv = bodyView(m, IFINFOMSG_SIZE, "RTM_NEWLINK");
  const l: NlLink = {
    index: dv.getInt32(4, true),
    type: dv.getUint16(2, true),
    flags: dv.getUint32(8, true),
    name: "",
    mtu: 0,
    mac: null,
    link: 0,
    master: 0,
    operstate: 0,
  };
  const start = NLMSG_HDRLEN + IFINFOMSG_SIZE;
  for (const a of nlParseAttrs(m.bytes, start, m.bytes.length)) {
    switch (a.type) {
      case IFLA_IFNAME:
        l.name = attrString(a);
        break;
      case IFLA_MTU:
        l.mtu = attrU32(a, "IFLA_MTU");
        break;
      case IFLA_ADDRESS:
        l.mac = a.data.slice();
        break;
      case IFLA_LINK:
        l.link = attrU32(a, "IFLA_LINK");
        break;
      case IFLA_MASTER:
        l.master = attrU32(a, "IFLA_MASTER");
        break;
      case IFLA_OPERSTATE:
        if (a.data.length < 1) throw nlMalformed("empty IFLA_OPERSTATE attribute");
        l.operstate = a.data[0]!;
        break;
    }
  }
  return l;
}

/** An address, from RTM_NEWADDR. */
export interface NlAddr {
  /** AF_INET or AF_INET6 */
  family: number;
  /** interface index */
  index: number;
  /** prefix length */
  prefixLen: number;
  /** RT_SCOPE_* */
  scope: number;
  /** IFA_F_* flags: IFA_FLAGS when present, else ifa_flags */
  flags: number;
  /** the interface's own address: IFA_LOCAL, else IFA_ADDRESS */
  addr: Uint8Array;
  /** IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point peer), else null */
  peer: Uint8Array | null;
  /** IPv4 broadcast address, or null */
  broadcast: Uint8Array | null;
  /** IPv4 label, or null */
  label: string | null;
  /** preferred lifetime in seconds (0xffffffff: forever) */
  preferredLft: number;
  /** valid lifetime in seconds (0xffffffff: forever) */
  validLft: number;
}

/**
 * Parses RTM_NEWADDR.
 * @param m the message
 * @returns the address
 * @throws SysError EBADMSG when malformed or when it carries no address
 */
export function nlParseAddr(m: NlMsg): NlAddr {
  const dv = bodyView(m, IFADDRMSG_SIZE, "RTM_NEWADDR");
  const family = dv.getUint8(0);
  let flags = dv.getUint8(2);
  let local: Uint8Array | null = null;
  let address: Uint8Array | null = null;
  let broadcast: Uint8Array | null = null;
  let label: string | null = null;
  let preferredLft = 0xffffffff;
  let validLft = 0xffffffff;
  const start = NLMSG_HDRLEN + IFADDRMSG_SIZE;
  for (const a of nlParseAttrs(m.bytes, start, m.bytes.length)) {
    switch (a.type) {
      case IFA_LOCAL:
        local = attrAddr(a, family, "IFA_LOCAL");
        break;
      case IFA_ADDRESS:
        address = attrAddr(a, family, "IFA_ADDRESS");
        break;
      case IFA_BROADCAST:
        broadcast = attrAddr(a, family, "IFA_BROADCAST");
        break;
      case IFA_LABEL:
        label = attrString(a);
        break;
      case IFA_FLAGS:
        flags = attrU32(a, "IFA_FLAGS");
        break;
      case IFA_CACHEINFO: {
        if (a.data.length < 8) throw nlMalformed(`IFA_CACHEINFO of ${a.data.length} bytes`);
        const c = new DataView(a.data.buffer, a.data.byteOffset, 8);
        preferredLft = c.getUint32(0, true);
        validLft = c.getUint32(4, true);
        break;
      }
    }
  }
  const addr = local ?? address;
  if (addr === null) throw nlMalformed("RTM_NEWADDR without IFA_LOCAL or IFA_ADDRESS");
  const peer = local !== null && address !== null && !bytesEqual(local, address) ? address : null;
  return {
    family,
    index: dv.getUint32(4, true),
    prefixLen: dv.getUint8(1),
    scope: dv.getUint8(3),
    flags,
    addr,
    peer,
    broadcast,
    label,
    preferredLft,
    validLft,
  };
}

/** One nexthop of a multipath route. */
export interface NlNexthop {
  /** output interface */
  ifindex: number;
  /** RTNH_F_* flags */
  flags: number;
  /** weight (rtnh_hops + 1) */
  weight: number;
  /** gateway, or null */
  gateway: Uint8Array | null;
}

/** A route, from RTM_NEWROUTE. */
export interface NlRoute {
  /** AF_INET or AF_INET6 */
  family: number;
  /** destination (all zeros for a default route) */
  dst: Uint8Array;
  /** destination prefix length (0: default route) */
  dstLen: number;
  /** source prefix length */
  srcLen: number;
  /** type of service */
  tos: number;
  /** table id (RTA_TABLE when present) */
  table: number;
  /** RTPROT_* */
  protocol: number;
  /** RT_SCOPE_* */
  scope: number;
  /** RTN_* */
  type: number;
  /** RTM_F_* / RTNH_F_* flags */
  flags: number;
  /** output interface, 0 if none (multipath routes use `multipath`) */
  oif: number;
  /** gateway, or null */
  gateway: Uint8Array | null;
  /** metric (RTA_PRIORITY), 0 when absent */
  priority: number;
  /** preferred source, or null */
  prefsrc: Uint8Array | null;
  /** nexthop object id, 0 if none */
  nhId: number;
  /** nexthops of a multipath route (empty otherwise) */
  multipath: NlNexthop[];
  /** the message as received, for nlRouteCopyMsg */
  raw: Uint8Array;
}

function parseMultipath(a: NlAttr, family: number): NlNexthop[] {
  const buf = a.data;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlNexthop[] = [];
  let off = 0;
  while (buf.length - off >= RTNH_SIZE) {
    const len = dv.getUint16(off, true);
    if (len < RTNH_SIZE) throw nlMalformed(`rtnexthop with rtnh_len ${len}`);
    if (len > buf.length - off) {
      throw nlMalformed(`rtnexthop rtnh_len ${len} beyond the ${buf.length - off} bytes left`);
    }
    const nh: NlNexthop = {
      flags: dv.getUint8(off + 2),
      weight: dv.getUint8(off + 3) + 1,
      ifindex: dv.getInt32(off + 4, true),
      gateway: null,
    };
    for (const x of nlParseAttrs(buf, off + RTNH_SIZE, off + len)) {
      if (x.type === RTA_GATEWAY) nh.gateway = attrAddr(x, family, "RTA_GATEWAY");
    }
    out.push(nh);
    off += nlAlign(len);
  }
  return out;
}

/**
 * Parses RTM_NEWROUTE.
 * @param m the message
 * @returns the route
 * @throws SysError EBADMSG when malformed
 */
export function nlParseRoute(m: NlMsg): NlRoute {
  const dv = bodyView(m, RTMSG_SIZE, "RTM_NEWROUTE");
  const family = dv.getUint8(0);
  const alen = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  const dstLen = dv.getUint8(1);
  if (alen && dstLen > alen * 8) throw nlMalformed(`route prefix length ${dstLen}`);
  const r: NlRoute = {
    family,
    dst: new Uint8Array(alen),
    dstLen,
    srcLen: dv.getUint8(2),
    tos: dv.getUint8(3),
    table: dv.getUint8(4),
    protocol: dv.getUint8(5),
    scope: dv.getUint8(6),
    type: dv.getUint8(7),
    flags: dv.getUint32(8, true),
    oif: 0,
    gateway: null,
    priority: 0,
    prefsrc: null,
    nhId: 0,
    multipath: [],
    raw: m.bytes.slice(),
  };
  const start = NLMSG_HDRLEN + RTMSG_SIZE;
  for (const a of nlParseAttrs(m.bytes, start, m.bytes.length)) {
    switch (a.type) {
      case RTA_DST:
        r.dst = attrAddr(a, family, "RTA_DST");
        break;
      case RTA_OIF:
        r.oif = attrU32(a, "RTA_OIF");
        break;
      case RTA_GATEWAY:
        r.gateway = attrAddr(a, family, "RTA_GATEWAY");
        break;
      case RTA_PRIORITY:
        r.priority = attrU32(a, "RTA_PRIORITY");
        break;
      case RTA_PREFSRC:
        r.prefsrc = attrAddr(a, family, "RTA_PREFSRC");
        break;
      case RTA_TABLE:
        r.table = attrU32(a, "RTA_TABLE");
        break;
      case RTA_NH_ID:
        r.nhId = attrU32(a, "RTA_NH_ID");
        break;
      case RTA_MULTIPATH:
        r.multipath = parseMultipath(a, family);
        break;
    }
  }
  return r;
}

/**
 * Reads the errno carried by NLMSG_ERROR (0 for an acknowledgement) and the
 * extended-ack text, if any.
 * @param m an NLMSG_ERROR message
 * @returns error (negative errno or 0) and the ext-ack message or null
 * @throws SysError EBADMSG when shorter than the error code
 */
export function nlParseError(m: NlMsg): { error: number; extAck: string | null } {
  const dv = bodyView(m, 4, "NLMSG_ERROR");
  const error = dv.getInt32(0, true);
  let extAck: string | null = null;
  if (m.flags & NLM_F_ACK_TLVS) {
    const b = m.bytes;
    const origAt = NLMSG_HDRLEN + 4;
    if (b.length >= origAt + NLMSG_HDRLEN) {
      const origLen = new DataView(b.buffer, b.byteOffset + origAt, 4).getUint32(0, true);
      const tlvAt = origAt + (m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : nlAlign(origLen));
      if (origLen >= NLMSG_HDRLEN && tlvAt <= b.length) {
        try {
          for (const a of nlParseAttrs(b, tlvAt, b.length)) {
            if (a.type === NLMSGERR_ATTR_MSG) extAck = attrString(a);
          }
        } catch {
          /* a broken ext-ack area does not hide the errno */
          extAck = null;
        }
      }
    }
  }
  return { error, extAck };
}

/* ---------------------------------------------------------- reply collector */

/**
 * Collects the reply to one request from the datagrams received for it.
 *
 * Messages with another sequence number are stale (left over from an earlier
 * request that was abandoned) and are skipped. A reply ends with NLMSG_DONE
 * (dumps) or NLMSG_ERROR (acknowledgement or error). Data messages are copied,
 * so the receive buffer may be reused.
 */
export class NlReply {
  /** request name for errors, such as "RTM_GETROUTE" */
  readonly op: string;
  /** sequence number of the request */
  readonly seq: number;
  /** our port id: replies must carry it (0: not checked) */
  readonly portid: number;
  /** data messages of the reply, in order */
  readonly messages: NlMsg[] = [];
  /** true once NLMSG_DONE or an acknowledgement arrived */
  done = false;
  /** a message carried NLM_F_DUMP_INTR: the dump may be inconsistent */
  interrupted = false;
  /** count of stale messages skipped */
  skipped = 0;

  /**
   * Starts collecting the reply to one request.
   * @param op request name for errors
   * @param seq sequence number of the request
   * @param portid our netlink port id (0: do not check)
   */
  constructor(op: string, seq: number, portid: number) {
    this.op = op;
    this.seq = seq;
    this.portid = portid;
  }

  /**
   * Takes one received datagram.
   * @param datagram the bytes received
   * @returns true when the reply is complete
   * @throws NlError when the kernel reports an error; SysError EBADMSG when malformed
   */
  feed(datagram: Uint8Array): boolean {
    for (const m of nlSplit(datagram)) {
      if (this.done) break;
      if (m.seq !== this.seq) {
        this.skipped++;
        continue;
      }
      if (this.portid !== 0 && m.pid !== this.portid) {
        throw nlMalformed(`${this.op} reply addressed to port ${m.pid}, ours is ${this.portid}`);
      }
      if (m.flags & NLM_F_DUMP_INTR) this.interrupted = true;
      switch (m.type) {
        case NLMSG_NOOP:
          break;
        case NLMSG_ERROR: {
          const { error, extAck } = nlParseError(m);
          if (error > 0) throw nlMalformed(`positive error ${error} in ${this.op} reply`);
          if (error < 0) throw new NlError(this.op, error, extAck);
          this.done = true;
          break;
        }
        case NLMSG_DONE: {
          if (m.bytes.length >= NLMSG_HDRLEN + 4) {
            const err = bodyView(m, 4, "NLMSG_DONE").getInt32(0, true);
            if (err < 0) throw new NlError(this.op, err);
          }
          this.done = true;
          break;
        }
        case NLMSG_OVERRUN:
          throw new NlError(this.op, ERRNO.ENOBUFS);
        default:
          this.messages.push({ ...m, bytes: m.bytes.slice() });
      }
    }
    return this.done;
  }
}

/**
 * Whether an address is link-local (169.254.0.0/16, fe80::/10).
 * @param addr 4 or 16 bytes
 * @returns true for link-local addresses
 */
export function nlIsLinkLocal(addr: Uint8Array): boolean {
  if (addr.length === 4) return addr[0] === 169 && addr[1] === 254;
  return addr[0] === 0xfe && (addr[1]! & 0xc0) === 0x80;
}

/**
 * Describes a route for logs and reports, like `ip route` does.
 * @param r the route
 * @returns such as "default via 192.0.2.1 dev 2 metric 100"
 */
export function nlRouteToString(r: NlRoute): string {
  let s = r.dstLen === 0 ? "default" : `${nlAddrToString(r.dst)}/${r.dstLen}`;
  if (r.gateway !== null) s += ` via ${nlAddrToString(r.gateway)}`;
  for (const nh of r.multipath) {
    s += ` nexthop${nh.gateway ? ` via ${nlAddrToString(nh.gateway)}` : ""} dev ${nh.ifindex}`;
  }
  if (r.oif) s += ` dev ${r.oif}`;
  if (r.priority) s += ` metric ${r.priority}`;
  return s;
}

/**
 * Compares two byte arrays.
 * @param a first
 * @param b second
 * @returns true when equal in length and content
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
