/**
 * rr.ts - TCP request/response and connection-rate helpers for the benchmark
 * (Debian 12 has no netperf/neper).
 *
 * Usage (`deno run --allow-net bench/rr.ts ...`):
 * - `server PORT [SECONDS]`: echoes whatever each connection sends; prints `ready` once
 *   listening; exits after SECONDS (default 120).
 * - `rr HOST PORT COUNT MAX_MS`: one connection, TCP_NODELAY, 100 warm-up round trips, then
 *   up to COUNT round trips of 1 byte (at most MAX_MS); prints JSON: count, median, p99, mean
 *   and min in microseconds.
 * - `crr HOST PORT COUNT MAX_MS`: 100 warm-up connections (as `rr` warms up: the translator's
 *   first connections pay for its JIT compiler), then up to COUNT times (at most MAX_MS):
 *   connect, send 1 byte, read 1 byte, close; prints JSON: count, seconds, perSecond, the median
 *   and p99 of one connection's time in microseconds, and the warm-up connections' mean time.
 *
 * A connect that takes more than 5 s ends the run with `{"error": ...}` and status 2.
 *
 * @module
 */

const CONNECT_TIMEOUT_MS = 5000;
/** Connections made by `crr` before it measures. */
const CRR_WARM_UP = 100;

/**
 * Prints one JSON line and exits.
 * @param obj the result
 * @param code exit status
 */
function finish(obj: unknown, code = 0): never {
  console.log(JSON.stringify(obj));
  Deno.exit(code);
}

/**
 * Connects with a deadline.
 * @param hostname address
 * @param port port
 * @returns the connection, with TCP_NODELAY
 */
async function connect(hostname: string, port: number): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const conn = await Promise.race([
    Deno.connect({ hostname, port }),
    new Promise<never>((_, rej) =>
      timer = setTimeout(
        () => rej(new Error(`connect to ${hostname}:${port} timed out`)),
        CONNECT_TIMEOUT_MS,
      )
    ),
  ]);
  clearTimeout(timer);
  conn.setNoDelay(true);
  return conn;
}

/**
 * Sends one byte and reads one back.
 * @param conn the connection
 * @param one a one-byte buffer
 * @param rbuf receive buffer
 */
async function roundTrip(conn: Deno.TcpConn, one: Uint8Array, rbuf: Uint8Array): Promise<void> {
  await conn.write(one);
  const n = await conn.read(rbuf);
  if (n === null) throw new Error("connection closed by the server");
}

/**
 * Echo server.
 * @param port port
 * @param seconds lifetime
 */
async function server(port: number, seconds: number): Promise<void> {
  setTimeout(() => Deno.exit(0), seconds * 1000);
  const listener = Deno.listen({ hostname: "0.0.0.0", port });
  console.log("ready");
  for await (const conn of listener) {
    (async () => {
      try {
        conn.setNoDelay(true);
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          await conn.write(buf.subarray(0, n));
        }
      } catch { /* reset by the peer */ }
      try {
        conn.close();
      } catch { /* closed */ }
    })();
  }
}

/**
 * Request/response latency over one connection.
 * @param host server address
 * @param port server port
 * @param count round trips to time
 * @param maxMs time limit
 */
async function rr(host: string, port: number, count: number, maxMs: number): Promise<void> {
  const conn = await connect(host, port);
  const one = new Uint8Array([0x2a]);
  const rbuf = new Uint8Array(64);
  for (let i = 0; i < 100; i++) await roundTrip(conn, one, rbuf);
  const us: number[] = [];
  const end = performance.now() + maxMs;
  while (us.length < count) {
    const t0 = performance.now();
    await roundTrip(conn, one, rbuf);
    const t1 = performance.now();
    us.push((t1 - t0) * 1000);
    if (t1 > end) break;
  }
  conn.close();
  us.sort((a, b) => a - b);
  const at = (q: number) => us[Math.min(us.length - 1, Math.floor(q * us.length))]!;
  finish({
    count: us.length,
    medianUs: at(0.5),
    p99Us: at(0.99),
    meanUs: us.reduce((a, b) => a + b, 0) / us.length,
    minUs: us[0],
  });
}

/**
 * Connection rate: connect, 1-byte exchange, close.
 * @param host server address
 * @param port server port
 * @param count connections at most
 * @param maxMs time limit
 */
async function crr(host: string, port: number, count: number, maxMs: number): Promise<void> {
  const one = new Uint8Array([0x2a]);
  const rbuf = new Uint8Array(64);
  const w0 = performance.now();
  for (let i = 0; i < CRR_WARM_UP; i++) {
    const conn = await connect(host, port);
    await roundTrip(conn, one, rbuf);
    conn.close();
  }
  const warmUpMeanUs = (performance.now() - w0) * 1000 / CRR_WARM_UP;
  const t0 = performance.now();
  const us: number[] = [];
  let t1 = t0;
  while (us.length < count && t1 - t0 < maxMs) {
    const conn = await connect(host, port);
    await roundTrip(conn, one, rbuf);
    conn.close();
    const t2 = performance.now();
    us.push((t2 - t1) * 1000);
    t1 = t2;
  }
  const seconds = (t1 - t0) / 1000;
  us.sort((a, b) => a - b);
  const at = (q: number) => us[Math.min(us.length - 1, Math.floor(q * us.length))]!;
  finish({
    count: us.length,
    seconds,
    perSecond: us.length / seconds,
    medianUs: at(0.5),
    p99Us: at(0.99),
    warmUpMeanUs,
  });
}

if (import.meta.main) {
  const [mode, a, b, c, d] = Deno.args;
  try {
    if (mode === "server") await server(Number(a), Number(b ?? 120));
    else if (mode === "rr") await rr(a!, Number(b), Number(c), Number(d));
    else if (mode === "crr") await crr(a!, Number(b), Number(c), Number(d));
    else finish({ error: `unknown mode ${mode}` }, 1);
  } catch (e) {
    finish({ error: e instanceof Error ? e.message : String(e) }, 2);
  }
}
