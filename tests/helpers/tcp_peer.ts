/**
 * tcp_peer.ts - TCP servers and clients for the end-to-end tests, run inside
 * the test's namespaces: `deno run --allow-net tcp_peer.ts MODE ARGS...`.
 *
 * Servers print "listening" once ready. Every mode has a deadline
 * (PEER_DEADLINE_MS, default 60 s) and exits 2 when it passes.
 *
 * Modes:
 * - serve-echo ADDR PORT: echo every connection until the client closes.
 * - serve-halfclose ADDR PORT [peers]: read until end of file, then answer
 *   with the SHA-256 of what was read (hex, newline) and 1 MiB of pattern,
 *   and close; with `peers`, print "from ADDR" for each connection.
 * - serve-http ADDR PORT: HTTP server answering "hello from remote".
 * - client-many HOST PORT N SIZE: N concurrent connections, each sends SIZE
 *   random bytes to an echo server and checks the echo; prints "ok N".
 * - client-halfclose HOST PORT SIZE: sends SIZE random bytes, shuts down
 *   writing, reads the whole answer and checks the hash; prints "ok".
 * - client-hold HOST PORT N SIZE HOLD_MS: N concurrent connections to an
 *   echo server, each first sends one byte and waits for its echo, so that
 *   all are open at once; a connection reset or closed by then counts as
 *   refused. Prints "held X refused Y", keeps them open HOLD_MS, then each
 *   held one sends SIZE random bytes and checks the echo; prints "ok X
 *   refused Y". Any other failure (a timeout, bytes that differ) exits 1.
 *
 * @module
 */

const deadline = Number(Deno.env.get("PEER_DEADLINE_MS") ?? "60000");
setTimeout(() => {
  console.error("tcp_peer: deadline passed");
  Deno.exit(2);
}, deadline);

async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

function random(size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(b.subarray(off, Math.min(size, off + 65536)));
  }
  return b;
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(262144);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

const [mode, a1, a2, a3, a4, ...rest] = Deno.args;
switch (mode) {
  case "serve-echo": {
    const l = Deno.listen({ hostname: a1!, port: Number(a2) });
    console.log("listening");
    for await (const conn of l) {
      (async () => {
        try {
          const buf = new Uint8Array(262144);
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            await writeAll(conn, buf.subarray(0, n));
          }
        } catch { /* client went away */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
    break;
  }
  case "serve-halfclose": {
    const l = Deno.listen({ hostname: a1!, port: Number(a2) });
    console.log("listening");
    for await (const conn of l) {
      if (a3 === "peers") console.log(`from ${(conn.remoteAddr as Deno.NetAddr).hostname}`);
      (async () => {
        const got = await readAll(conn);
        const reply = new TextEncoder().encode(`${await sha256(got)}\n`);
        await writeAll(conn, reply);
        const pattern = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
        await writeAll(conn, pattern);
        conn.close();
      })();
    }
    break;
  }
  case "serve-http": {
    Deno.serve(
      { hostname: a1!, port: Number(a2), onListen: () => console.log("listening") },
      () => new Response("hello from remote\n"),
    );
    break;
  }
  case "client-many": {
    const n = Number(a3);
    const size = Number(a4);
    const one = async (i: number) => {
      const conn = await Deno.connect({ hostname: a1!, port: Number(a2) });
      const data = random(size);
      const want = await sha256(data);
      const reader = (async () => {
        const got = new Uint8Array(size);
        let off = 0;
        while (off < size) {
          const r = await conn.read(got.subarray(off));
          if (r === null) throw new Error(`connection ${i}: early end after ${off} bytes`);
          off += r;
        }
        return got;
      })();
      await writeAll(conn, data);
      const got = await reader;
      conn.close();
      if (await sha256(got) !== want) throw new Error(`connection ${i}: echo differs`);
    };
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    if (failed.length > 0) {
      console.error(`${failed.length} failed, first: ${failed[0]!.reason}`);
      Deno.exit(1);
    }
    console.log(`ok ${n}`);
    Deno.exit(0);
    break;
  }
  case "client-hold": {
    const n = Number(a3);
    const size = Number(a4);
    const hold = Number(rest[0]);
    const one = async (i: number): Promise<Deno.Conn | null> => {
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname: a1!, port: Number(a2) });
      } catch (e) {
        /* NotConnected: reset between the handshake and getpeername() */
        if (
          e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset ||
          e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.NotConnected
        ) return null;
        throw e;
      }
      try {
        await writeAll(conn, new Uint8Array([i & 0xff]));
        const b = new Uint8Array(1);
        const r = await conn.read(b);
        if (r === null) {
          conn.close();
          return null;
        }
        if (b[0] !== (i & 0xff)) throw new Error(`connection ${i}: echo differs`);
        return conn;
      } catch (e) {
        conn.close();
        if (
          e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
          e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.NotConnected
        ) {
          return null;
        }
        throw e;
      }
    };
    const conns = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
    const held = conns.filter((c) => c !== null) as Deno.Conn[];
    const refused = n - held.length;
    console.log(`held ${held.length} refused ${refused}`);
    await new Promise((r) => setTimeout(r, hold));
    await Promise.all(held.map(async (conn, i) => {
      const data = random(size);
      const reader = (async () => {
        const got = new Uint8Array(size);
        let off = 0;
        while (off < size) {
          const r = await conn.read(got.subarray(off));
          if (r === null) throw new Error(`connection ${i}: early end after ${off} bytes`);
          off += r;
        }
        return got;
      })();
      await writeAll(conn, data);
      const got = await reader;
      conn.close();
      if (await sha256(got) !== await sha256(data)) throw new Error(`connection ${i}: differs`);
    }));
    console.log(`ok ${held.length} refused ${refused}`);
    Deno.exit(0);
    break;
  }
  case "client-halfclose": {
    const size = Number(a3);
    const conn = await Deno.connect({ hostname: a1!, port: Number(a2) });
    const data = random(size);
    await writeAll(conn, data);
    await conn.closeWrite();
    const got = await readAll(conn);
    const nl = got.indexOf(10);
    const hash = new TextDecoder().decode(got.subarray(0, nl));
    if (hash !== await sha256(data)) throw new Error("server saw other bytes");
    const rest = got.subarray(nl + 1);
    if (rest.length !== 1 << 20 || rest.some((b, i) => b !== (i & 0xff))) {
      throw new Error(`reply after half-close: ${rest.length} bytes, pattern broken`);
    }
    console.log("ok");
    Deno.exit(0);
    break;
  }
  default:
    console.error(`tcp_peer: unknown mode "${mode}"`);
    Deno.exit(1);
}
