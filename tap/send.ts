/**
 * send.ts - building frames for the guest: Ethernet and IP headers, and the
 * virtio-net header that lets the guest's kernel finish the L4 checksum.
 *
 * Theory of operation: in pasta mode the tap has IFF_VNET_HDR and frames we
 * write start with a 12-byte virtio-net header. With VIRTIO_NET_HDR_F_
 * NEEDS_CSUM set, `csum_start`/`csum_offset` name the L4 checksum field, which
 * we fill with the folded pseudo-header sum only: the guest's kernel treats
 * the frame as checksummed by hardware (CHECKSUM_PARTIAL), so orzo never
 * sums a payload on this path. Where no virtio-net header exists (passt
 * mode), the caller computes the full checksum instead.
 *
 * A frame is laid out as [vnet header (hdrLen bytes)][Ethernet][IP][L4]; the
 * functions here take the offset of the Ethernet header.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { csumFold, csumPartial } from "../wire/checksum.ts";
import { pcapFrame, pcapOn } from "../pcap.ts";
import { ETH_P_IP, ETH_P_IPV6 } from "../wire/eth.ts";

/** virtio_net_hdr flag: the L4 checksum is to be completed. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** virtio_net_hdr gso_type: none. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
/** virtio_net_hdr gso_type: TCP over IPv4. */
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** virtio_net_hdr gso_type: TCP over IPv6. */
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;

/** Length of Ethernet + IPv4 headers. */
export const L2L3_LEN4 = 14 + 20;
/** Length of Ethernet + IPv6 headers. */
export const L2L3_LEN6 = 14 + 40;

/**
 * Writes the Ethernet and IP headers of a frame to the guest.
 * @param c execution context (MACs)
 * @param buf frame buffer
 * @param dv DataView over buf's buffer, same offsets
 * @param off offset of the Ethernet header
 * @param v6 IPv6 (true) or IPv4
 * @param proto IP protocol number
 * @param src source address as 16-byte inany (IPv4-mapped for IPv4)
 * @param srcOff offset of src
 * @param dst destination address as 16-byte inany
 * @param dstOff offset of dst
 * @param l4Len length of L4 header and payload
 * @returns the offset of the L4 header
 */
export function l2l3Write(
  c: Ctx,
  buf: Uint8Array,
  dv: DataView,
  off: number,
  v6: boolean,
  proto: number,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  l4Len: number,
): number {
  const gm = c.guestMac;
  const om = c.ourMac;
  for (let i = 0; i < 6; i++) {
    buf[off + i] = gm[i]!;
    buf[off + 6 + i] = om[i]!;
  }
  const ip = off + 14;
  if (!v6) {
    dv.setUint16(off + 12, ETH_P_IP);
    dv.setUint32(ip, 0x45000000 | (20 + l4Len));
    dv.setUint32(ip + 4, 0x00004000); /* id 0, DF */
    dv.setUint32(ip + 8, (64 << 24) | (proto << 16)); /* ttl, proto, csum 0 */
    for (let i = 0; i < 4; i++) {
      buf[ip + 12 + i] = src[srcOff + 12 + i]!;
      buf[ip + 16 + i] = dst[dstOff + 12 + i]!;
    }
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (buf[ip + i]! << 8) | buf[ip + i + 1]!;
    dv.setUint16(ip + 10, ~csumFold(sum) & 0xffff);
    return ip + 20;
  }
  dv.setUint16(off + 12, ETH_P_IPV6);
  dv.setUint32(ip, 0x60000000);
  dv.setUint16(ip + 4, l4Len);
  buf[ip + 6] = proto;
  buf[ip + 7] = 255;
  for (let i = 0; i < 16; i++) {
    buf[ip + 8 + i] = src[srcOff + i]!;
    buf[ip + 24 + i] = dst[dstOff + i]!;
  }
  return ip + 40;
}

/**
 * Pseudo-header sum (folded, not inverted) of a frame written by l2l3Write().
 * @param buf frame buffer
 * @param ipOff offset of the IP header
 * @param v6 IPv6 or IPv4
 * @param proto IP protocol number
 * @param l4Len L4 length
 * @returns the 16-bit partial sum
 */
export function pseudoSum(
  buf: Uint8Array,
  ipOff: number,
  v6: boolean,
  proto: number,
  l4Len: number,
): number {
  let sum = proto + l4Len;
  if (!v6) {
    for (let i = 12; i < 20; i += 2) sum += (buf[ipOff + i]! << 8) | buf[ipOff + i + 1]!;
  } else {
    for (let i = 8; i < 40; i += 2) sum += (buf[ipOff + i]! << 8) | buf[ipOff + i + 1]!;
    sum += l4Len >>> 16;
  }
  return csumFold(sum);
}

/**
 * Writes a virtio-net header asking the guest's kernel to complete the L4
 * checksum, and stores the pseudo-header sum in the checksum field.
 * @param buf frame buffer
 * @param dv DataView over buf's buffer, same offsets
 * @param hdrOff offset of the 12-byte virtio-net header (just before Ethernet)
 * @param l4Off offset of the L4 header
 * @param csumField offset of the checksum within the L4 header (TCP 16, UDP 6, ICMP 2)
 * @param partial the pseudo-header sum (0 for ICMPv4)
 * @param gsoType VIRTIO_NET_HDR_GSO_* (NONE unless the segment exceeds the MTU)
 * @param gsoSize segment size for GSO, 0 otherwise
 */
export function vnetCsumWrite(
  buf: Uint8Array,
  dv: DataView,
  hdrOff: number,
  l4Off: number,
  csumField: number,
  partial: number,
  gsoType = 0,
  gsoSize = 0,
): void {
  const eth = hdrOff + 12;
  buf[hdrOff] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  buf[hdrOff + 1] = gsoType;
  dv.setUint16(hdrOff + 2, gsoType === 0 ? 0 : l4Off - eth + 20, true); /* hdr_len, hint */
  dv.setUint16(hdrOff + 4, gsoSize, true);
  dv.setUint16(hdrOff + 6, l4Off - eth, true); /* csum_start */
  dv.setUint16(hdrOff + 8, csumField, true); /* csum_offset */
  dv.setUint16(hdrOff + 10, 0, true); /* num_buffers */
  dv.setUint16(l4Off + csumField, partial);
}

let viewBuf: Uint8Array | null = null;
let viewOff = -1;
let view: Uint8Array<ArrayBuffer> | null = null;

/**
 * Writes one frame to the guest, finished by l4Finish(): the tap header
 * (c.tapHdrLen bytes) stands just before the Ethernet header at `eth`. The
 * view handed to write(2) is cached for the last (buffer, offset) pair, so
 * control frames built in one scratch buffer allocate nothing.
 * @param c execution context
 * @param buf frame buffer
 * @param eth offset of the Ethernet header
 * @param frameLen length from the Ethernet header to the end
 * @returns true when written
 */
export function tapSendFrame(c: Ctx, buf: Uint8Array, eth: number, frameLen: number): boolean {
  if (pcapOn) pcapFrame(buf, eth, frameLen);
  const hdr = eth - c.tapHdrLen;
  if (viewBuf !== buf || viewOff !== hdr) {
    view = buf.subarray(hdr) as Uint8Array<ArrayBuffer>;
    viewBuf = buf;
    viewOff = hdr;
  }
  if (c.tap.send(view!, frameLen + c.tapHdrLen) < 0) return false;
  c.stats.framesOut++;
  return true;
}

/**
 * Finishes a frame for the tap, by the tap's framing (c.tapHdrLen): with a
 * virtio-net header (12) the guest's kernel completes the L4 checksum
 * (vnetCsumWrite); without one (0), or with passt's 4-byte length prefix (4),
 * the checksum is computed here (WebAssembly SIMD when `buf` lives in its
 * memory) and the prefix written.
 * @param c execution context
 * @param buf frame buffer
 * @param dv DataView over buf's buffer, same offsets
 * @param eth offset of the Ethernet header (the tap header goes just before)
 * @param l4Off offset of the L4 header
 * @param l4Len L4 header and payload length
 * @param csumField offset of the checksum within the L4 header
 * @param partial pseudo-header sum (pseudoSum(); 0 for ICMPv4)
 */
export function l4Finish(
  c: Ctx,
  buf: Uint8Array,
  dv: DataView,
  eth: number,
  l4Off: number,
  l4Len: number,
  csumField: number,
  partial: number,
): void {
  const hdr = c.tapHdrLen;
  if (hdr === 12) {
    vnetCsumWrite(buf, dv, eth - 12, l4Off, csumField, partial);
    return;
  }
  dv.setUint16(l4Off + csumField, 0);
  const sum = csumPartial(buf, l4Off, l4Len, partial);
  let v = ~sum & 0xffff;
  /* UDP: a computed zero is sent as all ones (zero means "no checksum") */
  if (v === 0 && csumField === 6) v = 0xffff;
  dv.setUint16(l4Off + csumField, v);
  if (hdr === 4) {
    const frameLen = l4Off + l4Len - eth;
    dv.setUint32(eth - 4, frameLen);
  }
}
