/**
 * dns_server.ts - a tiny authoritative DNS server for tests, over UDP and
 * TCP port 53 (or PORT).
 *
 * Usage: deno run -A --unstable-net dns_server.ts ADDR[,ADDR...] [PORT] [SECONDS]
 *
 * Answers A and AAAA queries for names under `orzo.test` with fixed records
 * (DNS_A, DNS_AAAA), other types there with no answer, and every other name
 * with NXDOMAIN. Prints "ready" once bound, one line per query ("query PROTO
 * NAME TYPE FROM"), and exits after SECONDS (60).
 *
 * @module
 */

/** The IPv4 address every name under orzo.test resolves to. */
export const DNS_A = [192, 0, 2, 123];
/** The IPv6 address every name under orzo.test resolves to (2001:db8:ff::123). */
export const DNS_AAAA = [0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x23];
/** The zone served. */
export const DNS_ZONE = "orzo.test";

/** Reads the question name at off; returns the name and the offset after it. */
function readName(q: Uint8Array, off: number): [string, number] | null {
  const labels: string[] = [];
  while (off < q.length) {
    const n = q[off]!;
    if (n === 0) return [labels.join("."), off + 1];
    if (n > 63 || off + 1 + n > q.length) return null;
    labels.push(new TextDecoder().decode(q.subarray(off + 1, off + 1 + n)));
    off += 1 + n;
  }
  return null;
}

/**
 * Builds the response to a query.
 * @param q the query message
 * @param log called with the question's name and type
 * @returns the response, or null for garbage
 */
export function answer(
  q: Uint8Array,
  log: (name: string, type: number) => void,
): Uint8Array | null {
  if (q.length < 12) return null;
  const dv = new DataView(q.buffer, q.byteOffset, q.byteLength);
  if (dv.getUint16(4) !== 1) return null;
  const r = readName(q, 12);
  if (r === null || r[1] + 4 > q.length) return null;
  const [name, end] = r;
  const type = dv.getUint16(end);
  log(name, type);
  const lower = name.toLowerCase();
  const inZone = lower === DNS_ZONE || lower.endsWith("." + DNS_ZONE);
  const rdata = type === 1 ? DNS_A : type === 28 ? DNS_AAAA : null;
  const hasAnswer = inZone && rdata !== null;
  const question = q.subarray(12, end + 4);
  const out = new Uint8Array(12 + question.length + (hasAnswer ? 12 + rdata!.length : 0));
  const o = new DataView(out.buffer);
  o.setUint16(0, dv.getUint16(0)); /* id */
  /* QR, opcode 0, AA, RD copied; RA; rcode NXDOMAIN unless in the zone */
  o.setUint16(2, 0x8400 | (dv.getUint16(2) & 0x0100) | 0x0080 | (inZone ? 0 : 3));
  o.setUint16(4, 1);
  o.setUint16(6, hasAnswer ? 1 : 0);
  out.set(question, 12);
  if (hasAnswer) {
    let p = 12 + question.length;
    o.setUint16(p, 0xc00c);
    o.setUint16(p + 2, type);
    o.setUint16(p + 4, 1);
    o.setUint32(p + 6, 60);
    o.setUint16(p + 10, rdata!.length);
    p += 12;
    out.set(rdata!, p);
  }
  return out;
}

async function serveUdp(addr: string, port: number): Promise<void> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: addr, port });
  await Promise.resolve();
  (async () => {
    for (;;) {
      const [q, from] = await conn.receive();
      const a = from as Deno.NetAddr;
      const r = answer(q, (n, t) => console.log(`query udp ${n} ${t} ${a.hostname}`));
      if (r !== null) await conn.send(r, from);
    }
  })();
}

async function serveTcp(addr: string, port: number): Promise<void> {
  const l = Deno.listen({ transport: "tcp", hostname: addr, port });
  await Promise.resolve();
  (async () => {
    for await (const c of l) {
      (async () => {
        try {
          const buf = new Uint8Array(65538);
          let have = 0;
          for (;;) {
            const n = await c.read(buf.subarray(have));
            if (n === null) break;
            have += n;
            while (have >= 2) {
              const len = (buf[0]! << 8) | buf[1]!;
              if (have < 2 + len) break;
              const from = (c.remoteAddr as Deno.NetAddr).hostname;
              const r = answer(
                buf.slice(2, 2 + len),
                (nm, t) => console.log(`query tcp ${nm} ${t} ${from}`),
              );
              buf.copyWithin(0, 2 + len, have);
              have -= 2 + len;
              if (r === null) continue;
              const out = new Uint8Array(2 + r.length);
              out[0] = r.length >> 8;
              out[1] = r.length & 0xff;
              out.set(r, 2);
              await c.write(out);
            }
          }
        } catch { /* peer gone */ }
        try {
          c.close();
        } catch { /* closed */ }
      })();
    }
  })();
}

if (import.meta.main) {
  const addrs = (Deno.args[0] ?? "127.0.0.1").split(",");
  const port = Number(Deno.args[1] ?? 53);
  const seconds = Number(Deno.args[2] ?? 60);
  setTimeout(() => Deno.exit(0), seconds * 1000);
  for (const a of addrs) {
    await serveUdp(a, port);
    await serveTcp(a, port);
  }
  console.log("ready");
}
