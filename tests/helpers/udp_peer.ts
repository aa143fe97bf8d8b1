/**
 * udp_peer.ts - UDP test peer: an echo server and a checking client.
 *
 * Usage (run with --allow-net --unstable-net, or -A --unstable-net):
 *
 *     udp_peer.ts echo ADDR PORT[,PORT...] [SECONDS]
 *         Echoes every datagram back to its sender; prints "ready" once
 *         bound to every port. A zero-length datagram is answered with the
 *         text "H COUNT BYTES HASH": datagrams and bytes echoed so far to
 *         that sender (address and port) and the FNV-1a hash of their
 *         bytes, in order. Exits after SECONDS (60).
 *     udp_peer.ts client ADDR PORT COUNT MIN MAX [TIMEOUT_MS] [BIND_ADDR:BIND_PORT]
 *         Sends COUNT datagrams of sizes from MIN to MAX bytes (first MIN,
 *         last MAX, the others spread between), one at a time, each with
 *         its own content; waits up to TIMEOUT_MS (2000) for each echo and
 *         compares every byte. Then asks the server for its hash. Prints
 *         one JSON line: { sent, ok, lost, bad, bytes, ms, serverCount,
 *         serverBytes, hashOk }.
 *     udp_peer.ts burst ADDR PORT ROUNDS PER SIZE [TIMEOUT_MS]
 *         ROUNDS times: sends PER datagrams of SIZE bytes back to back (each
 *         with its own content), then reads PER echoes, each compared byte
 *         for byte with the datagram of the same position (so a reordered
 *         echo counts as bad). Then asks the server for its hash. Prints one
 *         JSON line like `client`.
 *     udp_peer.ts multi JOBS
 *         Runs client jobs one after the other: JOBS is a JSON array of
 *         { addr, port, count, min, max, timeoutMs?, bind? }; prints one
 *         JSON line per job (the job's fields plus the results).
 *
 * @module
 */

const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over bytes, continuing from h. */
function fnv(h: number, b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 16777619) >>> 0;
  return h;
}

/** Contents of datagram i, `size` bytes. */
function content(i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let j = 0; j < size; j++) b[j] = ((i * 131 + j * 7) ^ (j >> 8) ^ (i >> 3)) & 0xff;
  return b;
}

/** Size of datagram i of count, from min to max. */
function sizeOf(i: number, count: number, min: number, max: number): number {
  if (count === 1 || i === 0) return min;
  if (i === count - 1) return max;
  /* spread, but not monotonic: a multiplicative walk over the range */
  const span = max - min + 1;
  return min + ((i * 7919) % span);
}

function transportAddr(hostname: string, port: number): Deno.NetAddr {
  return { transport: "udp", hostname, port };
}

async function echoPort(addr: string, port: number): Promise<void> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: addr, port });
  /* counters per sender: each client job uses its own socket */
  const peers = new Map<string, { count: number; bytes: number; h: number }>();
  const buf = new Uint8Array(65536);
  await Promise.resolve();
  (async () => {
    for (;;) {
      const [data, from] = await conn.receive(buf);
      const a = from as Deno.NetAddr;
      const k = `${a.hostname}/${a.port}`;
      let p = peers.get(k);
      if (p === undefined) {
        p = { count: 0, bytes: 0, h: FNV_OFFSET };
        peers.set(k, p);
      }
      if (data.length === 0) {
        const text = `H ${p.count} ${p.bytes} ${p.h}`;
        await conn.send(new TextEncoder().encode(text), from);
        continue;
      }
      p.count++;
      p.bytes += data.length;
      p.h = fnv(p.h, data);
      await conn.send(data, from);
    }
  })();
}

async function echo(addr: string, ports: string, seconds: number): Promise<void> {
  setTimeout(() => Deno.exit(0), seconds * 1000);
  for (const p of ports.split(",")) await echoPort(addr, Number(p));
  console.log("ready");
}

async function recvTimeout(
  conn: Deno.DatagramConn,
  buf: Uint8Array,
  ms: number,
): Promise<Uint8Array | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  const r = await Promise.race([conn.receive(buf).then(([d]) => d), t]);
  clearTimeout(timer);
  return r;
}

/** One client job. */
interface Job {
  addr: string;
  port: number;
  count: number;
  min: number;
  max: number;
  timeoutMs?: number;
  bind?: string;
}

async function client(args: string[]): Promise<void> {
  const [addr, portS, countS, minS, maxS, toS, bindS] = args;
  const job: Job = {
    addr: addr!,
    port: Number(portS),
    count: Number(countS),
    min: Number(minS),
    max: Number(maxS),
    timeoutMs: Number(toS ?? 2000),
  };
  if (bindS !== undefined) job.bind = bindS;
  console.log(JSON.stringify(await runJob(job)));
}

async function runJob(job: Job): Promise<Record<string, unknown>> {
  const { addr, port, count, min, max } = job;
  const timeoutMs = job.timeoutMs ?? 2000;
  const bindS = job.bind;
  const v6 = addr.includes(":");
  let bindHost = v6 ? "::" : "0.0.0.0";
  let bindPort = 0;
  if (bindS !== undefined) {
    const i = bindS.lastIndexOf(":");
    bindHost = bindS.slice(0, i).replace(/^\[|\]$/g, "");
    bindPort = Number(bindS.slice(i + 1));
  }
  const conn = Deno.listenDatagram({ transport: "udp", hostname: bindHost, port: bindPort });
  const to = transportAddr(addr, port);
  const buf = new Uint8Array(65536);
  let ok = 0;
  let lost = 0;
  let bad = 0;
  let bytes = 0;
  let h = FNV_OFFSET;
  const t0 = performance.now();
  /* a pending echo that arrives after its timeout would pair with the next
   * datagram: after a loss, drain what is left before going on */
  for (let i = 0; i < count; i++) {
    const size = sizeOf(i, count, min, max);
    const d = content(i, size);
    h = fnv(h, d);
    bytes += size;
    await conn.send(d, to);
    const r = await recvTimeout(conn, buf, timeoutMs);
    if (r === null) {
      lost++;
      continue;
    }
    let same = r.length === size;
    for (let j = 0; same && j < size; j++) if (r[j] !== d[j]) same = false;
    if (same) ok++;
    else bad++;
  }
  const ms = performance.now() - t0;
  const { serverCount, serverBytes, hashOk } = await serverTotals(conn, to, buf, timeoutMs, h);
  conn.close();
  return { ...job, sent: count, ok, lost, bad, bytes, ms, serverCount, serverBytes, hashOk };
}

/**
 * Asks the echo server for its totals (an empty datagram; it answers
 * "H COUNT BYTES HASH"), up to three times, skipping late echoes.
 * @returns the server's count and bytes (-1 when it never answered), and
 *   whether its hash matches `h`
 */
async function serverTotals(
  conn: Deno.DatagramConn,
  to: Deno.NetAddr,
  buf: Uint8Array,
  timeoutMs: number,
  h: number,
): Promise<{ serverCount: number; serverBytes: number; hashOk: boolean }> {
  let serverCount = -1;
  let serverBytes = -1;
  let hashOk = false;
  for (let attempt = 0; attempt < 3 && serverCount < 0; attempt++) {
    await conn.send(new Uint8Array(0), to);
    for (;;) {
      const r = await recvTimeout(conn, buf, timeoutMs);
      if (r === null) break;
      const m = /^H (\d+) (\d+) (\d+)$/.exec(new TextDecoder().decode(r));
      if (m === null) continue; /* a late echo */
      serverCount = Number(m[1]);
      serverBytes = Number(m[2]);
      hashOk = Number(m[3]) === h;
      break;
    }
  }
  return { serverCount, serverBytes, hashOk };
}

async function burst(args: string[]): Promise<void> {
  const [addr, portS, roundsS, perS, sizeS, toS] = args;
  const rounds = Number(roundsS);
  const per = Number(perS);
  const size = Number(sizeS);
  const timeoutMs = Number(toS ?? 2000);
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname: addr!.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  });
  const to = transportAddr(addr!, Number(portS));
  const buf = new Uint8Array(65536);
  let ok = 0;
  let lost = 0;
  let bad = 0;
  let bytes = 0;
  let h = FNV_OFFSET;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    const sent: Uint8Array[] = [];
    for (let k = 0; k < per; k++) {
      const d = content(r * per + k, size);
      h = fnv(h, d);
      bytes += size;
      sent.push(d);
    }
    /* back to back, each awaited (sends in flight at once may leave out of order) */
    for (const d of sent) await conn.send(d, to);
    for (let k = 0; k < per; k++) {
      const got = await recvTimeout(conn, buf, timeoutMs);
      if (got === null) {
        lost += per - k;
        break;
      }
      const d = sent[k]!;
      let same = got.length === d.length;
      for (let j = 0; same && j < d.length; j++) if (got[j] !== d[j]) same = false;
      if (same) ok++;
      else bad++;
    }
  }
  const ms = performance.now() - t0;
  const { serverCount, serverBytes, hashOk } = await serverTotals(conn, to, buf, timeoutMs, h);
  conn.close();
  const sentCount = rounds * per;
  console.log(JSON.stringify({
    addr,
    port: Number(portS),
    sent: sentCount,
    ok,
    lost,
    bad,
    bytes,
    ms,
    serverCount,
    serverBytes,
    hashOk,
  }));
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  if (mode === "echo") {
    await echo(rest[0]!, rest[1]!, Number(rest[2] ?? 60));
  } else if (mode === "client") {
    await client(rest);
  } else if (mode === "burst") {
    await burst(rest);
  } else if (mode === "multi") {
    for (const job of JSON.parse(rest[0]!) as Job[]) console.log(JSON.stringify(await runJob(job)));
  } else {
    console.error("usage: udp_peer.ts echo|client ...");
    Deno.exit(2);
  }
}
