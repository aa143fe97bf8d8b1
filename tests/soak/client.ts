/**
 * client.ts - the soak test's guest side (`deno run --allow-net client.ts
 * HOST PORT POOL RATE SECONDS`), against an echo server: POOL connections
 * opened (at RATE a second) and held; then for SECONDS, RATE new short
 * connections a second (1 KiB each way, checked) and one bulk connection
 * streaming random data (checked), while 100 held connections a second
 * exchange a few checked bytes; then every held connection exchanges 16
 * bytes and closes. Prints progress lines and a final "result {...}" JSON;
 * exits 1 if any byte differed or any connection failed. A sixth argument
 * `nobulk` leaves the bulk connection out (for extra churn-only clients); a
 * seventh names a file that the client holding the pool (POOL > 0) creates
 * once the pool is open, and that the others wait for before they churn.
 *
 * @module
 */

const [host, portText, poolText, rateText, secsText, bulkMode, readyFile] = Deno.args;
const port = Number(portText);
const POOL = Number(poolText);
const RATE = Number(rateText);
const SECS = Number(secsText);
const deadline = setTimeout(() => {
  console.error("soak client: deadline passed");
  Deno.exit(2);
}, (SECS + 240) * 1000);

function random(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(b.subarray(o, Math.min(n, o + 65536)));
  return b;
}

async function readN(c: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await c.read(out.subarray(off));
    if (r === null) throw new Error(`early end after ${off} of ${n} bytes`);
    off += r;
  }
  return out;
}

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await c.write(b.subarray(off));
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One checked exchange of n bytes. */
async function exchange(c: Deno.Conn, n: number): Promise<void> {
  const data = random(n);
  const [, got] = await Promise.all([writeAll(c, data), readN(c, n)]);
  if (!same(data, got)) throw new Error("echo differs");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The bulk transfer's rate cap (SOAK_BULK_MIB_S, MiB/s; 0 is unlimited). */
const BULK_MIB_S = Number(Deno.env.get("SOAK_BULK_MIB_S") ?? 50) || Infinity;
const stats = {
  pool: 0,
  poolChecks: 0,
  churnOk: 0,
  churnFail: 0,
  bulkBytes: 0,
  errors: [] as string[],
};
const fail = (what: string, e: unknown) => {
  if (stats.errors.length < 10) stats.errors.push(`${what}: ${e instanceof Error ? e.message : e}`);
};

/* phase 1: the pool */
const pool: Deno.Conn[] = [];
const t1 = performance.now();
for (let i = 0; i < POOL; i += RATE / 10) {
  const batch = [];
  for (let k = 0; k < RATE / 10 && i + k < POOL; k++) {
    batch.push(
      (async () => {
        const c = await Deno.connect({ hostname: host!, port });
        await exchange(c, 1);
        pool.push(c);
      })().catch((e) => fail("pool connect", e)),
    );
  }
  await Promise.all([...batch, sleep(100)]);
}
stats.pool = pool.length;
console.log(`pool ${pool.length} open in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
if (readyFile !== undefined) {
  if (POOL > 0) await Deno.writeTextFile(readyFile, "");
  else {
    for (let i = 0; i < 3000; i++) {
      if (await Deno.stat(readyFile).then(() => true, () => false)) break;
      await sleep(100);
    }
  }
}

/* phase 2: churn, bulk and pool checks for SECS seconds */
let running = true;
const bulk = (async () => {
  if (bulkMode === "nobulk") return;
  const c = await Deno.connect({ hostname: host!, port });
  const t0 = performance.now();
  while (running) {
    await exchange(c, 1 << 20);
    stats.bulkBytes += 1 << 20;
    /* at most BULK_MIB_S MiB/s each way, so that the churn keeps the CPUs */
    const ahead = t0 + (stats.bulkBytes / (1 << 20)) * 1000 / BULK_MIB_S - performance.now();
    if (ahead > 0) await sleep(ahead);
  }
  c.close();
})().catch((e) => fail("bulk", e));
const churn = async () => {
  try {
    const c = await Deno.connect({ hostname: host!, port });
    await exchange(c, 1024);
    c.close();
    stats.churnOk++;
  } catch (e) {
    stats.churnFail++;
    fail("churn", e);
  }
};
const inflight: Promise<void>[] = [];
const t2 = performance.now();
let tick = 0;
while (performance.now() - t2 < SECS * 1000) {
  for (let k = 0; k < RATE / 100; k++) inflight.push(churn());
  if (tick % 100 === 0) {
    for (let k = 0; k < 100 && pool.length > 0; k++) {
      const c = pool[Math.floor(Math.random() * pool.length)]!;
      inflight.push(exchange(c, 64).then(() => void stats.poolChecks++, (e) => fail("pool", e)));
    }
    console.log(
      `t=${tick / 100}s churn ok ${stats.churnOk} failed ${stats.churnFail}, bulk ${
        stats.bulkBytes >> 20
      } MiB`,
    );
    if (inflight.length > 20000) await Promise.all(inflight.splice(0));
  }
  tick++;
  const ahead = t2 + tick * 10 - performance.now();
  if (ahead > 0) await sleep(ahead);
}
running = false;
await Promise.all(inflight);
await bulk;

/* phase 3: every held connection checked once more, then closed */
await Promise.all(pool.map(async (c) => {
  try {
    await exchange(c, 16);
    stats.poolChecks++;
  } catch (e) {
    fail("pool close", e);
  }
  c.close();
}));
clearTimeout(deadline);
console.log(`result ${JSON.stringify(stats)}`);
Deno.exit(stats.errors.length === 0 && stats.pool === POOL ? 0 : 1);
