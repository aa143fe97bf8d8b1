/**
 * record_server.ts - a server that listens only on the loopback (127.0.0.1
 * and ::1, TCP and UDP, one port) and records everything that reaches it.
 *
 * Usage (run with --allow-net --allow-write --unstable-net):
 *
 *     record_server.ts PORT FILE [SECONDS]
 *
 * Prints "ready" once all four sockets are bound. Appends one line to FILE
 * per accepted TCP connection ("tcp LOCAL <- REMOTE") and per datagram
 * ("udp LOCAL <- REMOTE PAYLOAD"); TCP connections are closed at once.
 * Exits after SECONDS (60).
 *
 * @module
 */

const [portArg, file, secondsArg] = Deno.args;
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || file === undefined) {
  console.error("usage: record_server.ts PORT FILE [SECONDS]");
  Deno.exit(2);
}
setTimeout(() => Deno.exit(0), Number(secondsArg ?? "60") * 1000);

function record(line: string): void {
  Deno.writeTextFileSync(file!, line + "\n", { append: true });
}

function text(a: Deno.Addr): string {
  const n = a as Deno.NetAddr;
  return n.hostname.includes(":") ? `[${n.hostname}]:${n.port}` : `${n.hostname}:${n.port}`;
}

Deno.writeTextFileSync(file, "");
const dec = new TextDecoder();
for (const hostname of ["127.0.0.1", "::1"]) {
  const l = Deno.listen({ hostname, port });
  (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch (e) {
        /* a connection that was reset before its peer could be named
         * (ENOTCONN) still reached us */
        if (e instanceof Deno.errors.NotConnected) {
          record(`tcp ${hostname} <- (reset)`);
          continue;
        }
        throw e;
      }
      record(`tcp ${hostname} <- ${text(conn.remoteAddr)}`);
      try {
        conn.close();
      } catch { /* reset already */ }
    }
  })();
  const u = Deno.listenDatagram({ transport: "udp", hostname, port });
  (async () => {
    for await (const [data, from] of u) {
      record(`udp ${hostname} <- ${text(from)} ${dec.decode(data)}`);
    }
  })();
}
console.log("ready");
