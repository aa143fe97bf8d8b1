/**
 * arp.ts - answers the guest's ARP requests (proxy ARP, as passt's arp.c).
 *
 * Every IPv4 address on the link is ours as far as the guest is concerned:
 * a request for any target gets a reply with our MAC address, except
 *  - requests for the guest's own address (c.ip4.addr), which must stay
 *    unanswered so that its duplicate address detection succeeds, and
 *  - announcements (sender address == target address, not 0.0.0.0), which
 *    ask nothing. Probes (sender 0.0.0.0) are answered like requests.
 *
 * Only Ethernet/IPv4 requests are considered; anything truncated or not
 * Ethernet/IPv4 is counted in c.stats.malformed, other operations (replies
 * from the guest) and unanswered requests in c.stats.unhandled. The reply is
 * built in `out`, which may be the same memory as the request. Learning the
 * guest's MAC address is the caller's job (tap.ts). Allocates nothing.
 *
 * @module
 */

import type { Ctx } from "../ctx.ts";
import { ViewCache } from "../wire/view_cache.ts";
import { ETH_HLEN, ETH_P_ARP, ETH_SRC, ethCheckLen, ethType } from "../wire/eth.ts";
import {
  ARP_LEN,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  ARP_SHA,
  ARP_THA,
  ARP_TPA,
  arpCheckLen,
  arpIsEthIp4,
  arpOp,
  arpSetHeader,
  arpSetSha,
  arpSetSpa,
  arpSetTpa,
  arpSpa,
  arpTpa,
} from "../wire/arp.ts";
import { macIsMulticast, macWrite } from "../wire/mac.ts";
import { addrEqual, IP4_LEN } from "../wire/addr.ts";

/** Length of the reply frame: Ethernet header and ARP packet, no padding. */
export const ARP_REPLY_LEN: number = ETH_HLEN + ARP_LEN;

const inView = new ViewCache();
const outView = new ViewCache();

/**
 * Answers an ARP request from the guest.
 * @param c execution context
 * @param frame buffer holding the frame
 * @param off where the Ethernet header starts in `frame`
 * @param len frame length
 * @param out buffer for the reply frame (at its start; ARP_REPLY_LEN bytes)
 * @returns length of the reply written to `out`, 0 when there is none
 */
export function arpHandle(
  c: Ctx,
  frame: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
): number {
  if (off < 0 || len < 0 || off + len > frame.length) {
    c.stats.malformed++;
    return 0;
  }
  if (!c.ip4.enabled) {
    c.stats.unhandled++;
    return 0;
  }
  const base = inView.use(frame) + off;
  const dv = inView.dv;
  if (!ethCheckLen(dv, base, len) || ethType(dv, base) !== ETH_P_ARP) {
    c.stats.malformed++;
    return 0;
  }
  const a = base + ETH_HLEN;
  if (
    !arpCheckLen(dv, a, len - ETH_HLEN) || !arpIsEthIp4(dv, a) ||
    macIsMulticast(dv, base + ETH_SRC)
  ) {
    c.stats.malformed++;
    return 0;
  }
  if (arpOp(dv, a) !== ARP_OP_REQUEST) {
    c.stats.unhandled++;
    return 0;
  }
  const sip = arpSpa(dv, a);
  const tip = arpTpa(dv, a);
  /* announcements ask nothing; the guest's own address is not ours to claim */
  if ((sip !== 0 && sip === tip) || addrEqual(dv, a + ARP_TPA, c.ip4.addr, IP4_LEN)) {
    c.stats.unhandled++;
    return 0;
  }
  if (out.length < ARP_REPLY_LEN) return 0;

  /* read everything the reply needs before writing: out may alias frame */
  const sha0 = dv.getUint32(a + ARP_SHA);
  const sha1 = dv.getUint16(a + ARP_SHA + 4);
  const esrc0 = dv.getUint32(base + ETH_SRC);
  const esrc1 = dv.getUint16(base + ETH_SRC + 4);

  const o = outView.use(out);
  const odv = outView.dv;
  odv.setUint32(o, esrc0);
  odv.setUint16(o + 4, esrc1);
  macWrite(odv, o + ETH_SRC, c.ourMac);
  odv.setUint16(o + 12, ETH_P_ARP);
  const r = o + ETH_HLEN;
  arpSetHeader(odv, r, ARP_OP_REPLY);
  arpSetSha(odv, r, c.ourMac);
  arpSetSpa(odv, r, tip);
  odv.setUint32(r + ARP_THA, sha0);
  odv.setUint16(r + ARP_THA + 4, sha1);
  arpSetTpa(odv, r, sip);
  c.stats.arpReplies++;
  return ARP_REPLY_LEN;
}
