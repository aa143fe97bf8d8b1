/**
 * server.ts - the soak test's echo server (`deno run --allow-net server.ts
 * ADDR PORT SECONDS`): echoes every connection; a connection reset before
 * it is accepted is skipped, not fatal. Prints "listening"; exits after
 * SECONDS.
 *
 * @module
 */

const [addr, port, secs] = Deno.args;
setTimeout(() => Deno.exit(0), Number(secs) * 1000);
const l = Deno.listen({ hostname: addr!, port: Number(port) });
console.log("listening");
for (;;) {
  let c: Deno.Conn;
  try {
    c = await l.accept();
  } catch {
    continue;
  }
  (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        let off = 0;
        while (off < n) off += await c.write(buf.subarray(off, n));
      }
    } catch { /* reset */ }
    try {
      c.close();
    } catch { /* closed */ }
  })();
}
