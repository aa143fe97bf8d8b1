/**
 * ctx.ts - the execution context handed to every handler as `c`.
 *
 * Built once at start from the configuration and the host's network state;
 * the protocol handlers read it and update only the learned fields (guest MAC,
 * guest addresses seen on the tap) and the counters.
 *
 * @module
 */

import { FlowTable } from "./flow/table.ts";
import type { NsSync } from "./ns/ns_sync.ts";
import { TAP_NONE, type TapBackend } from "./tap/backend.ts";

/** Per-family addressing that the guest sees. */
export interface Ip4Ctx {
  /** whether IPv4 is enabled */
  enabled: boolean;
  /** address assigned to the guest (4 bytes) */
  addr: Uint8Array;
  /** prefix length of the guest's address */
  prefixLen: number;
  /** gateway address the guest uses (4 bytes), all zero when none */
  gateway: Uint8Array;
  /** last address the guest used as source on the tap (4 bytes) */
  addrSeen: Uint8Array;
  /** guest-side address that maps to the host's loopback (4 bytes), zero when none */
  mapHostLoopback: Uint8Array;
  /** guest-side address that maps to the guest's own address on the host, zero when none */
  mapGuestAddr: Uint8Array;
  /** guest-side address whose DNS traffic goes to dnsHost (4 bytes), zero when none */
  dnsMatch: Uint8Array;
  /** the host's resolver for dnsMatch (4 bytes) */
  dnsHost: Uint8Array;
}

/** IPv6 addressing that the guest sees. */
export interface Ip6Ctx {
  /** whether IPv6 is enabled */
  enabled: boolean;
  /** global address assigned to the guest (16 bytes) */
  addr: Uint8Array;
  /** prefix length of the guest's address */
  prefixLen: number;
  /** gateway (router) address (16 bytes): link-local or global */
  gateway: Uint8Array;
  /** our link-local address, source of NDP and RA messages (16 bytes) */
  ourLinkLocal: Uint8Array;
  /** last global address the guest used as source (16 bytes) */
  addrSeen: Uint8Array;
  /** last link-local address the guest used as source (16 bytes) */
  addrLinkLocalSeen: Uint8Array;
  /** guest-side address that maps to the host's loopback (16 bytes), zero when none */
  mapHostLoopback: Uint8Array;
  /** guest-side address that maps to the guest's own address on the host, zero when none */
  mapGuestAddr: Uint8Array;
  /** guest-side address whose DNS traffic goes to dnsHost (16 bytes), zero when none */
  dnsMatch: Uint8Array;
  /** the host's resolver for dnsMatch (16 bytes) */
  dnsHost: Uint8Array;
}

/** Counters of what the tap intake dropped or answered. */
export interface TapStats {
  /** frames read from the tap */
  framesIn: number;
  /** frames written to the tap */
  framesOut: number;
  /** frames dropped as malformed (truncated, bad lengths, garbage) */
  malformed: number;
  /** frames dropped as not for us or of an unhandled protocol */
  unhandled: number;
  /** ARP requests answered */
  arpReplies: number;
  /** neighbour advertisements sent */
  ndpAdverts: number;
  /** router advertisements sent */
  routerAdverts: number;
  /** DHCP replies sent (offers, acks, naks) */
  dhcpReplies: number;
  /** DHCPv6 replies sent (advertise, reply) */
  dhcpv6Replies: number;
  /** DHCP and DHCPv6 messages dropped as malformed (also counted in malformed) */
  dhcpMalformed: number;
}

/** The execution context. */
export interface Ctx {
  /** "pasta" (tap device in a namespace) or "passt" (qemu stream socket) */
  mode: "pasta" | "passt";
  /** our MAC address as seen by the guest (6 bytes) */
  ourMac: Uint8Array;
  /** the guest's MAC address (6 bytes), learned from its frames */
  guestMac: Uint8Array;
  /** MTU announced to the guest; 0 means do not announce */
  mtu: number;
  /** IPv4 side */
  ip4: Ip4Ctx;
  /** IPv6 side */
  ip6: Ip6Ctx;
  /** do not answer NDP (neighbour solicitations, router solicitations) */
  noNdp: boolean;
  /** do not send router advertisements */
  noRa: boolean;
  /** DNS servers to announce, IPv4 (4 bytes each), for DHCP */
  dns4: Uint8Array[];
  /** DNS servers to announce, IPv6 (16 bytes each) */
  dns6: Uint8Array[];
  /** DNS search domains to announce */
  dnsSearch: string[];
  /** do not answer DHCP (--no-dhcp) */
  noDhcp: boolean;
  /** do not answer DHCPv6 (--no-dhcpv6) */
  noDhcpv6: boolean;
  /** host name for the guest (-H, DHCP option 12), "" for none */
  hostname: string;
  /** fully qualified name for the guest (--fqdn, DHCP 81, DHCPv6 39), "" for none */
  fqdn: string;
  /** counters */
  stats: TapStats;
  /** the tap fd (pasta) or the qemu stream socket (passt), -1 when none */
  tapFd: number;
  /** where frames for the guest go (tap/backend.ts): the tap device or the stream socket */
  tap: TapBackend;
  /**
   * bytes before each frame on the tap: 12 (virtio-net header, pasta) or 4
   * (length prefix, passt); frame buffers reserve this room before Ethernet
   */
  tapHdrLen: number;
  /** the flow table shared by TCP, UDP and ICMP */
  flows: FlowTable;
  /**
   * an fd referring to the guest's network namespace (pasta), -1 when none:
   * sockets that must live there are opened through ns/ns_sync.ts with it
   */
  nsFd: number;
  /**
   * synchronous channel for sockets and files in the guest's namespace while
   * the loop runs (splice, -U/-T, `auto` scans), null when none
   */
  nsSync: NsSync | null;
}

/**
 * Creates a context with everything off and zeroed; setup fills it in.
 * @param flowCapacity size of the flow table (orzo itself uses FLOW_MAX)
 * @returns a new context
 */
export function ctxNew(flowCapacity = 1023): Ctx {
  return {
    mode: "pasta",
    ourMac: new Uint8Array([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]),
    guestMac: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    mtu: 65520,
    ip4: {
      enabled: false,
      addr: new Uint8Array(4),
      prefixLen: 0,
      gateway: new Uint8Array(4),
      addrSeen: new Uint8Array(4),
      mapHostLoopback: new Uint8Array(4),
      mapGuestAddr: new Uint8Array(4),
      dnsMatch: new Uint8Array(4),
      dnsHost: new Uint8Array(4),
    },
    ip6: {
      enabled: false,
      addr: new Uint8Array(16),
      prefixLen: 64,
      gateway: new Uint8Array(16),
      ourLinkLocal: new Uint8Array([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        0x98,
        0x55,
        0x9a,
        0xff,
        0xfe,
        0x55,
        0x9a,
        0x55,
      ]),
      addrSeen: new Uint8Array(16),
      addrLinkLocalSeen: new Uint8Array(16),
      mapHostLoopback: new Uint8Array(16),
      mapGuestAddr: new Uint8Array(16),
      dnsMatch: new Uint8Array(16),
      dnsHost: new Uint8Array(16),
    },
    noNdp: false,
    noRa: false,
    dns4: [],
    dns6: [],
    dnsSearch: [],
    noDhcp: false,
    noDhcpv6: false,
    hostname: "",
    fqdn: "",
    stats: {
      framesIn: 0,
      framesOut: 0,
      malformed: 0,
      unhandled: 0,
      arpReplies: 0,
      ndpAdverts: 0,
      routerAdverts: 0,
      dhcpReplies: 0,
      dhcpv6Replies: 0,
      dhcpMalformed: 0,
    },
    tapFd: -1,
    tap: TAP_NONE,
    tapHdrLen: 12,
    flows: new FlowTable({ capacity: flowCapacity }),
    nsFd: -1,
    nsSync: null,
  };
}
