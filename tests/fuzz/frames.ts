/**
 * frames.ts - the fuzzer's frames: valid seed frames from the guest (ARP,
 * NDP, DHCP, DHCPv6, TCP, UDP, ICMP, IPv6 extension headers, fragments) and
 * the mutations applied to them, driven by a seeded PRNG so that a run is
 * reproducible from its seed.
 *
 * Every builder writes one Ethernet frame at the start of a caller's buffer
 * and returns its length; nothing here allocates per frame.
 *
 * @module
 */

/** Our MAC (orzo's default). */
export const OUR_MAC = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
/** The guest's MAC. */
export const GUEST_MAC = [0x7e, 0x57, 0xe3, 0x79, 0x5a, 0xf6];
/** The guest's addresses. */
export const GUEST4 = [10, 0, 2, 15];
/** The gateway: the host's loopback through the NAT. */
export const GW4 = [10, 0, 2, 2];
/** The guest's IPv6 address. */
export const GUEST6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15];
/** The IPv6 gateway. */
export const GW6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02];
/** A link-local source of the guest. */
const LL6 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x7c, 0x57, 0xe3, 0xff, 0xfe, 0x79, 0x5a, 0xf6];

/**
 * Sets the addresses the frames use (the e2e frame storm takes the guest's
 * real ones), in place.
 * @param a the guest's MAC and addresses, and the gateways
 */
export function frameAddrsSet(a: {
  guestMac: readonly number[];
  guest4: readonly number[];
  gw4: readonly number[];
  guest6: readonly number[];
  gw6: readonly number[];
}): void {
  for (let i = 0; i < 6; i++) GUEST_MAC[i] = a.guestMac[i]!;
  for (let i = 0; i < 4; i++) GUEST4[i] = a.guest4[i]!;
  for (let i = 0; i < 4; i++) GW4[i] = a.gw4[i]!;
  for (let i = 0; i < 16; i++) GUEST6[i] = a.guest6[i]!;
  for (let i = 0; i < 16; i++) GW6[i] = a.gw6[i]!;
}

/** A seeded PRNG (xorshift128+ reduced to 32 bits, fast and allocation-free). */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /**
   * Seeds the generator.
   * @param seed any 32-bit number
   */
  constructor(seed: number) {
    this.#a = seed >>> 0 || 1;
    this.#b = 0x9e3779b9;
    this.#c = 0x243f6a88;
    this.#d = 0xb7e15162;
    for (let i = 0; i < 16; i++) this.u32();
  }

  /**
   * The next number (xoshiro128**).
   * @returns an integer in 0 .. 2^32 - 1
   */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /**
   * A number below n.
   * @param n bound (at most 2^32)
   * @returns an integer in 0 .. n - 1
   */
  below(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /**
   * True with probability 1/n.
   * @param n odds
   * @returns the outcome
   */
  oneIn(n: number): boolean {
    return this.below(n) === 0;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/* ------------------------------------------------------------ checksums */

function sum16(b: Uint8Array, off: number, len: number, acc: number): number {
  let s = acc;
  let i = 0;
  for (; i + 1 < len; i += 2) s += (b[off + i]! << 8) | b[off + i + 1]!;
  if (i < len) s += b[off + i]! << 8;
  return s;
}

function fold(s: number): number {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 65536);
  return ~x & 0xffff;
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

function putBytes(b: Uint8Array, off: number, v: readonly number[]): void {
  for (let i = 0; i < v.length; i++) b[off + i] = v[i]!;
}

/**
 * Writes the L4 checksum of a frame whose IP header starts at 14.
 * @param b the frame
 * @param l4 offset of the L4 header
 * @param l4Len bytes of L4 header and payload
 * @param proto 6, 17, 1 or 58
 * @param v6 IPv6 (the addresses at 22..54) or IPv4 (26..34)
 */
export function l4Csum(b: Uint8Array, l4: number, l4Len: number, proto: number, v6: boolean): void {
  const at = proto === 6 ? 16 : proto === 17 ? 6 : 2;
  put16(b, l4 + at, 0);
  let s = 0;
  if (proto !== 1) {
    s = v6 ? sum16(b, 22, 32, 0) : sum16(b, 26, 8, 0);
    s += proto + l4Len;
  }
  s = sum16(b, l4, l4Len, s);
  let c = fold(s);
  if (c === 0 && proto === 17) c = 0xffff;
  put16(b, l4 + at, c);
}

/* ------------------------------------------------------------ headers */

function eth(b: Uint8Array, type: number, dst: readonly number[] = OUR_MAC): number {
  putBytes(b, 0, dst);
  putBytes(b, 6, GUEST_MAC);
  put16(b, 12, type);
  return 14;
}

/** IPv4 header at 14 (20 bytes, or more with `opts` bytes of options). */
function ip4(
  b: Uint8Array,
  proto: number,
  payloadLen: number,
  src: readonly number[],
  dst: readonly number[],
  opts = 0,
): number {
  const hl = 20 + opts;
  b[14] = 0x40 | (hl >> 2);
  b[15] = 0;
  put16(b, 16, hl + payloadLen);
  put16(b, 18, 0x1234);
  put16(b, 20, 0x4000);
  b[22] = 64;
  b[23] = proto;
  put16(b, 24, 0);
  putBytes(b, 26, src);
  putBytes(b, 30, dst);
  for (let i = 0; i < opts; i++) b[34 + i] = i === opts - 1 ? 0 : 1; /* NOPs, then EOL */
  put16(b, 24, fold(sum16(b, 14, hl, 0)));
  return 14 + hl;
}

/** IPv6 header at 14. */
function ip6(
  b: Uint8Array,
  next: number,
  payloadLen: number,
  src: readonly number[],
  dst: readonly number[],
): number {
  put32(b, 14, 0x60000000);
  put16(b, 18, payloadLen);
  b[20] = next;
  b[21] = 64;
  putBytes(b, 22, src);
  putBytes(b, 38, dst);
  return 54;
}

/* ------------------------------------------------------------ seeds */

/** A TCP segment's fields. */
export interface TcpFields {
  /** IPv6 */
  v6: boolean;
  /** the guest's port */
  sport: number;
  /** destination port */
  dport: number;
  /** sequence number */
  seq: number;
  /** acknowledgement number */
  ack: number;
  /** flags byte */
  flags: number;
  /** window field */
  win: number;
  /** bytes of options (a multiple of 4, at most 40), filled by kind */
  optLen: number;
  /** payload bytes (filled with a pattern) */
  payload: number;
  /** destination address (default: the gateway) */
  dst?: readonly number[];
}

/**
 * Writes a TCP segment from the guest, checksummed.
 * @param b buffer
 * @param f the fields
 * @returns the frame length
 */
export function tcpFrame(b: Uint8Array, f: TcpFields): number {
  const hl = 20 + f.optLen;
  const l4Len = hl + f.payload;
  eth(b, f.v6 ? 0x86dd : 0x0800);
  const l4 = f.v6 ? ip6(b, 6, l4Len, GUEST6, f.dst ?? GW6) : ip4(b, 6, l4Len, GUEST4, f.dst ?? GW4);
  put16(b, l4, f.sport);
  put16(b, l4 + 2, f.dport);
  put32(b, l4 + 4, f.seq);
  put32(b, l4 + 8, f.ack);
  b[l4 + 12] = (hl >> 2) << 4;
  b[l4 + 13] = f.flags;
  put16(b, l4 + 14, f.win);
  put16(b, l4 + 18, 0);
  let o = l4 + 20;
  const end = l4 + hl;
  /* MSS, window scale, SACK permitted, timestamps, as far as room allows */
  if (end - o >= 4) {
    putBytes(b, o, [2, 4, 0x05, 0xb4]);
    o += 4;
  }
  if (end - o >= 4) {
    putBytes(b, o, [1, 3, 3, 7]);
    o += 4;
  }
  if (end - o >= 4) {
    putBytes(b, o, [1, 1, 4, 2]);
    o += 4;
  }
  if (end - o >= 12) {
    putBytes(b, o, [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0]);
    o += 12;
  }
  while (o < end) b[o++] = 1;
  for (let i = 0; i < f.payload; i++) b[end + i] = (i * 7 + f.seq) & 0xff;
  l4Csum(b, l4, l4Len, 6, f.v6);
  return l4 + l4Len;
}

/**
 * Writes a UDP datagram from the guest, checksummed.
 * @param b buffer
 * @param v6 IPv6
 * @param sport source port
 * @param dport destination port
 * @param payload payload bytes
 * @param dst destination address (default: the gateway)
 * @returns the frame length
 */
export function udpFrame(
  b: Uint8Array,
  v6: boolean,
  sport: number,
  dport: number,
  payload: number,
  dst?: readonly number[],
): number {
  const l4Len = 8 + payload;
  eth(b, v6 ? 0x86dd : 0x0800);
  const l4 = v6 ? ip6(b, 17, l4Len, GUEST6, dst ?? GW6) : ip4(b, 17, l4Len, GUEST4, dst ?? GW4);
  put16(b, l4, sport);
  put16(b, l4 + 2, dport);
  put16(b, l4 + 4, l4Len);
  for (let i = 0; i < payload; i++) b[l4 + 8 + i] = (i * 13) & 0xff;
  l4Csum(b, l4, l4Len, 17, v6);
  return l4 + l4Len;
}

/**
 * Writes an ICMP or ICMPv6 echo request.
 * @param b buffer
 * @param v6 ICMPv6
 * @param id identifier
 * @param seq sequence number
 * @param payload payload bytes
 * @returns the frame length
 */
export function echoFrame(
  b: Uint8Array,
  v6: boolean,
  id: number,
  seq: number,
  payload: number,
): number {
  const l4Len = 8 + payload;
  eth(b, v6 ? 0x86dd : 0x0800);
  const l4 = v6 ? ip6(b, 58, l4Len, GUEST6, GW6) : ip4(b, 1, l4Len, GUEST4, GW4);
  b[l4] = v6 ? 128 : 8;
  b[l4 + 1] = 0;
  put16(b, l4 + 4, id);
  put16(b, l4 + 6, seq);
  for (let i = 0; i < payload; i++) b[l4 + 8 + i] = i & 0xff;
  l4Csum(b, l4, l4Len, v6 ? 58 : 1, v6);
  return l4 + l4Len;
}

function arpFrame(b: Uint8Array, op: number): number {
  eth(b, 0x0806, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  putBytes(b, 14, [0, 1, 8, 0, 6, 4, 0, op]);
  putBytes(b, 22, GUEST_MAC);
  putBytes(b, 28, GUEST4);
  putBytes(b, 32, [0, 0, 0, 0, 0, 0]);
  putBytes(b, 38, GW4);
  return 42;
}

/** NDP: neighbour solicitation (135) for the gateway, or router solicitation (133). */
function ndpFrame(b: Uint8Array, type: number): number {
  eth(b, 0x86dd, [0x33, 0x33, 0xff, 0, 0, 0x02]);
  const solNode = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x02];
  const allRouters = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
  const len = type === 135 ? 32 : 16;
  const l4 = ip6(b, 58, len, LL6, type === 135 ? solNode : allRouters);
  b[21] = 255;
  b[l4] = type;
  b[l4 + 1] = 0;
  put32(b, l4 + 4, 0);
  let o = l4 + 8;
  if (type === 135) {
    putBytes(b, o, GW6);
    o += 16;
  }
  /* source link-layer address option */
  putBytes(b, o, [1, 1, ...GUEST_MAC]);
  l4Csum(b, l4, len, 58, true);
  return l4 + len;
}

/* busybox udhcpc DISCOVER, as captured on orzo's tap (local/dhcp_test.ts) */
const DHCP_DISCOVER =
  "ffffffffffff7e57e3795af608004500014800000000401179a600000000ffffffff004400430134" +
  "d7c1010106006d2e6f6200000000000000000000000000000000000000007e57e3795af600000000" +
  "00000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "00000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "00000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "00000000000000000000000000000000000000000000000000000000000000000000000000000000" +
  "00000000000000000000000000000000000000000000000000000000000000000000000000006382" +
  "53633501013902024037070103060c0f1c2a3c0c756468637020312e33352e303d07017e57e3795a" +
  "f6ff0000000000000000000000000000000000000000";

/* ISC dhclient -6 SOLICIT, as captured on orzo's tap (local/dhcpv6_test.ts) */
const DHCP6_SOLICIT =
  "3333000100027e57e3795af686dd600486c600401101fe800000000000007c57e3fffe795af6ff02" +
  "0000000000000000000000010002022202230040b79f0169ee610001000e00010001329f3f727e57" +
  "e3795af600060008001700180027001f0008000200000003000ce3795af600000e1000001518";

function fromHex(s: string): Uint8Array {
  const d = s.replace(/\s+/g, "");
  const out = new Uint8Array(d.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(d.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const dhcpSeed = fromHex(DHCP_DISCOVER);
const dhcp6Seed = fromHex(DHCP6_SOLICIT);

/** IPv6 with extension headers before `next` (hop-by-hop, routing, destination, fragment). */
function ip6ExtFrame(b: Uint8Array, rnd: Prng, udpPort: number): number {
  const chain = [0, 43, 60, 44];
  const n = 1 + rnd.below(4);
  eth(b, 0x86dd);
  let o = 54;
  let prevNext = 20;
  for (let i = 0; i < n; i++) {
    const type = chain[rnd.below(chain.length)]!;
    b[prevNext] = type;
    prevNext = o;
    if (type === 44) {
      /* fragment header: 8 bytes; a first fragment with M set, or a whole one */
      b[o + 1] = 0;
      put16(b, o + 2, rnd.oneIn(2) ? 1 : 0);
      put32(b, o + 4, rnd.u32());
      o += 8;
    } else {
      const units = rnd.below(3);
      b[o + 1] = units;
      for (let k = 2; k < 8 + units * 8; k++) b[o + k] = k === 2 ? 1 : 0; /* PadN */
      b[o + 3] = 8 + units * 8 - 4;
      o += 8 + units * 8;
    }
  }
  b[prevNext] = 17;
  put16(b, o, 40000 + rnd.below(100));
  put16(b, o + 2, udpPort);
  put16(b, o + 4, 8 + 16);
  o += 8 + 16;
  put32(b, 14, 0x60000000);
  put16(b, 18, o - 54);
  b[21] = 64;
  putBytes(b, 22, GUEST6);
  putBytes(b, 38, GW6);
  return o;
}

/** Kinds of seed frame. */
export const SEED_KINDS = 14;

/**
 * Writes a seed frame of a kind.
 * @param b buffer
 * @param kind 0 .. SEED_KINDS - 1
 * @param rnd the PRNG (ports, sizes)
 * @param ports the gateway's live TCP and UDP ports
 * @returns the frame length
 */
export function seedFrame(
  b: Uint8Array,
  kind: number,
  rnd: Prng,
  ports: { tcp: number; udp: number },
): number {
  const v6 = rnd.oneIn(2);
  switch (kind) {
    case 0:
      return arpFrame(b, 1 + rnd.below(2));
    case 1:
      return ndpFrame(b, rnd.oneIn(2) ? 135 : 133);
    case 2:
      b.set(dhcpSeed);
      return dhcpSeed.length;
    case 3:
      b.set(dhcp6Seed);
      return dhcp6Seed.length;
    case 4:
    case 5:
      return tcpFrame(b, {
        v6,
        sport: 30000 + rnd.below(20000),
        dport: rnd.oneIn(4) ? rnd.below(65536) : ports.tcp,
        seq: rnd.u32(),
        ack: 0,
        flags: 0x02,
        win: 65535,
        optLen: 4 * rnd.below(11),
        payload: 0,
      });
    case 6:
      return tcpFrame(b, {
        v6,
        sport: 30000 + rnd.below(20000),
        dport: ports.tcp,
        seq: rnd.u32(),
        ack: rnd.u32(),
        flags: rnd.below(256),
        win: rnd.below(65536),
        optLen: 4 * rnd.below(11),
        payload: rnd.below(1400),
      });
    case 7:
    case 8:
      return udpFrame(b, v6, 40000 + rnd.below(200), rnd.oneIn(3) ? 53 : ports.udp, rnd.below(600));
    case 9:
      return echoFrame(b, v6, rnd.below(64), rnd.below(65536), rnd.below(100));
    case 10:
      return ip6ExtFrame(b, rnd, ports.udp);
    case 11: {
      /* an IPv4 fragment, first or later, of a UDP datagram */
      const n = udpFrame(b, false, 40000 + rnd.below(100), ports.udp, 64 + rnd.below(400));
      put16(b, 20, rnd.oneIn(2) ? 0x2000 : rnd.below(0x2000));
      put16(b, 24, 0);
      put16(b, 24, fold(sum16(b, 14, 20, 0)));
      return n;
    }
    case 12: {
      /* IPv4 with options */
      const payload = 8 + rnd.below(64);
      const l4 = ip4(b, 17, payload, GUEST4, GW4, 4 * (1 + rnd.below(10)));
      eth(b, 0x0800);
      put16(b, l4, 40000);
      put16(b, l4 + 2, ports.udp);
      put16(b, l4 + 4, payload);
      l4Csum(b, l4, payload, 17, false);
      return l4 + payload;
    }
    default:
      /* to some other address: refused, unreachable, or a flow */
      return rnd.oneIn(2)
        ? udpFrame(b, v6, 40000 + rnd.below(100), 1 + rnd.below(65535), 32, randomAddr(rnd, v6))
        : tcpFrame(b, {
          v6,
          sport: 30000 + rnd.below(20000),
          dport: 1 + rnd.below(65535),
          seq: rnd.u32(),
          ack: 0,
          flags: 0x02,
          win: 65535,
          optLen: 8,
          payload: 0,
          dst: randomAddr(rnd, v6),
        });
  }
}

const addr4 = [0, 0, 0, 0];
const addr6 = new Array<number>(16).fill(0);
const SPECIAL4 = [[0, 0, 0, 0], [127, 0, 0, 1], [255, 255, 255, 255], [224, 0, 0, 1], [
  10,
  0,
  2,
  15,
], [10, 0, 2, 3]];

function randomAddr(rnd: Prng, v6: boolean): readonly number[] {
  if (!v6) {
    if (rnd.oneIn(3)) return SPECIAL4[rnd.below(SPECIAL4.length)]!;
    for (let i = 0; i < 4; i++) addr4[i] = rnd.below(256);
    return addr4;
  }
  for (let i = 0; i < 16; i++) addr6[i] = rnd.oneIn(2) ? 0 : rnd.below(256);
  if (rnd.oneIn(3)) addr6[0] = [0xff, 0xfe, 0, 0xfd][rnd.below(4)]!;
  return addr6;
}

/* ------------------------------------------------------------ mutations */

/**
 * Mutates a frame in place (and may change its length).
 * @param b buffer holding the frame (room for 65 KiB)
 * @param len its length
 * @param rnd the PRNG
 * @returns the new length
 */
export function mutate(b: Uint8Array, len: number, rnd: Prng): number {
  let n = len;
  const rounds = 1 + rnd.below(3);
  for (let r = 0; r < rounds; r++) {
    const ipv6 = b[12] === 0x86 && b[13] === 0xdd;
    const l4 = ipv6 ? 54 : 14 + (b[14]! & 0x0f) * 4;
    switch (rnd.below(12)) {
      case 0: /* random bytes anywhere */
      case 1: {
        const k = 1 + rnd.below(8);
        for (let i = 0; i < k && n > 0; i++) b[rnd.below(n)] = rnd.below(256);
        break;
      }
      case 2: /* cut short */
        n = rnd.below(n + 1);
        break;
      case 3: {
        /* garbage appended */
        const k = rnd.below(rnd.oneIn(50) ? 65000 - n : 200);
        for (let i = 0; i < k && n < b.length; i++) b[n++] = rnd.below(256);
        break;
      }
      case 4: /* lengths: IPv4 total / IHL, IPv6 payload length */
        if (ipv6) put16(b, 18, pick16(rnd, n - 54));
        else if (rnd.oneIn(2)) put16(b, 16, pick16(rnd, n - 14));
        else b[14] = (rnd.oneIn(4) ? rnd.below(16) << 4 : 0x40) | rnd.below(16);
        break;
      case 5: /* protocol / next header */
        b[ipv6 ? 20 : 23] = rnd.oneIn(2)
          ? [0, 1, 6, 17, 43, 44, 58, 60, 59, 255][rnd.below(10)]!
          : rnd.below(256);
        break;
      case 6: /* fragment fields */
        if (!ipv6) put16(b, 20, rnd.below(65536));
        else if (l4 + 8 <= n) {
          b[l4] = b[20]!;
          b[20] = 44;
          put16(b, l4 + 2, rnd.below(65536));
        }
        break;
      case 7: /* TCP data offset and flags */
        if (l4 + 14 <= n) {
          if (rnd.oneIn(2)) b[l4 + 12] = rnd.below(256);
          else b[l4 + 13] = rnd.below(256);
        }
        break;
      case 8: /* TCP options running past the end, odd lengths */
        if (l4 + 24 <= n) {
          const o = l4 + 20 + rnd.below(Math.min(40, n - l4 - 20));
          b[o] = [0, 1, 2, 3, 4, 5, 8, 30, 254, 255][rnd.below(10)]!;
          if (o + 1 < n) b[o + 1] = [0, 1, 2, 3, 4, 10, 40, 255][rnd.below(8)]!;
          if (o + 2 < n) b[o + 2] = rnd.below(256);
        }
        break;
      case 9: /* windows: zero, one, huge */
        if (l4 + 16 <= n) put16(b, l4 + 14, [0, 1, 0xffff, rnd.below(65536)][rnd.below(4)]!);
        break;
      case 10: /* sequence and acknowledgement numbers */
        if (l4 + 12 <= n) put32(b, l4 + 4 + 4 * rnd.below(2), rnd.u32());
        break;
      default: /* UDP length, ports */
        if (l4 + 8 <= n) put16(b, l4 + 2 * rnd.below(3), pick16(rnd, n - l4));
        break;
    }
  }
  return n;
}

function pick16(rnd: Prng, near: number): number {
  switch (rnd.below(4)) {
    case 0:
      return 0;
    case 1:
      return 0xffff;
    case 2:
      return (near + rnd.below(9) - 4) & 0xffff;
    default:
      return rnd.below(65536);
  }
}

/**
 * Writes random bytes as a frame, sometimes with our MAC and an EtherType
 * orzo handles, so that it gets past the Ethernet header.
 * @param b buffer
 * @param rnd the PRNG
 * @returns the frame length
 */
export function randomFrame(b: Uint8Array, rnd: Prng): number {
  const n = rnd.oneIn(8) ? rnd.below(14) : 14 + rnd.below(rnd.oneIn(100) ? 9000 : 200);
  for (let i = 0; i < n; i++) b[i] = rnd.below(256);
  if (n >= 14 && !rnd.oneIn(4)) {
    putBytes(b, 0, OUR_MAC);
    put16(b, 12, [0x0800, 0x86dd, 0x0806][rnd.below(3)]!);
    if (n > 14 && b[12] === 0x08 && b[13] === 0) b[14] = 0x45;
    if (n > 14 && b[12] === 0x86) b[14] = 0x60;
  }
  return n;
}
