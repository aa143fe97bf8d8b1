/**
 * End-to-end tests of forwards changed at run time: `orzo ctl` on the
 * control socket (-c) of a running `orzo --pasta`, with clients on the
 * host's loopback (splice path) and in the remote namespace (tap path).
 */

import assert from "node:assert/strict";
import {
  background,
  denoIn,
  denoSh,
  orzoIn,
  run,
  TCP_PEER,
  Topology,
  UDP_PEER,
} from "../helpers/topology.ts";
import { withGuestServers } from "../helpers/guest.ts";

const isRoot = Deno.uid() === 0;
const PEER = denoSh(TCP_PEER);
const UDP_RUN = denoSh(UDP_PEER);
const ENV = { DENO_NO_UPDATE_CHECK: "1" };
/** What `list` answers with no forward in force. */
const NONE = { ok: true, "tcp": [], "udp": [], "tcp-ns": [], "udp-ns": [] };

/** `orzo ctl SOCKET ARGS...` (from the test's own namespace: the socket is a file). */
function ctl(sock: string, ...args: string[]) {
  return run(orzoIn(null, ["ctl", sock, ...args]));
}

async function ctlOk(sock: string, ...args: string[]): Promise<Record<string, unknown>> {
  const r = await ctl(sock, ...args);
  assert.equal(r.code, 0, `ctl ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The argv prefix that runs a command in a namespace: by name, or that of a process (PID). */
function inNs(ns: string | number): string[] {
  return typeof ns === "string" ? ["ip", "netns", "exec", ns] : ["nsenter", "-t", `${ns}`, "-n"];
}

/** Runs a command in a namespace (see inNs). */
function runIn(ns: string | number, cmd: string[]) {
  return run([...inNs(ns), ...cmd], { env: ENV, timeoutMs: 60000 });
}

/** A TCP client with the given size through tcp_peer's half-close exchange, in a namespace. */
function tcpClient(ns: string | number, addr: string, port: number, size: number) {
  return runIn(ns, denoIn(null, TCP_PEER, ["client-halfclose", addr, `${port}`, `${size}`]));
}

/** A UDP client job (udp_peer client) in a namespace, its JSON result. */
async function udpClient(
  ns: string | number,
  args: string,
): Promise<Record<string, number | boolean>> {
  const r = await runIn(ns, denoIn(null, UDP_PEER, ["client", ...args.split(" ")]));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

Deno.test({
  name: "ctl: TCP and UDP forwards added and removed at run time, splice and tap paths",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir({ prefix: "orzo-ctl-" });
    await Deno.chmod(dir, 0o777);
    const sock = `${dir}/orzo.ctl`;
    try {
      const { orzo } = await withGuestServers(
        t,
        ["--config-net", "-d", "-c", sock, "-t", "none", "-u", "none", "-T", "none", "-U", "none"],
        [
          `${PEER} serve-echo :: 9100 & sleep 0.5; echo ready; wait`,
          `${PEER} serve-halfclose :: 9101 & sleep 0.5; echo ready; wait`,
          `${UDP_RUN} echo :: 9200 100`,
        ],
        async () => {
          const st = await Deno.stat(sock);
          assert.ok(st.isSocket, "the control socket exists");
          assert.equal(st.mode! & 0o777, 0o600, "mode 0600");

          /* nothing forwarded yet: refused */
          assert.notEqual((await tcpClient(t.host, "127.0.0.1", 19101, 1000)).code, 0);

          assert.deepEqual(await ctlOk(sock, "add", "tcp", "19100-19101:9100-9101"), { ok: true });
          assert.deepEqual(await ctlOk(sock, "add", "udp", "19200:9200"), { ok: true });
          assert.deepEqual(await ctlOk(sock, "list"), {
            ...NONE,
            tcp: ["19100-19101:9100-9101"],
            udp: ["19200:9200"],
          });
          /* a conflicting rule is refused, one line, nothing changes */
          const bad = await ctl(sock, "add", "tcp", "19101");
          assert.equal(bad.code, 1);
          assert.match(bad.stderr, /^orzo ctl: Conflicting port forwarding.*\n$/);

          /* TCP: splice path (host loopback), both families, and tap path (remote) */
          for (
            const [ns, addr] of [
              [t.host, "127.0.0.1"],
              [t.host, "::1"],
              [t.remote, "198.51.100.2"],
              [t.remote, "2001:db8:1::2"],
            ]
          ) {
            const r = await tcpClient(ns!, addr!, 19101, 3 << 20);
            assert.equal(r.stdout.trim(), "ok", `${addr}: ${r.stderr}`);
          }
          /* UDP: splice path and tap path, every byte echoed */
          for (const [ns, addr] of [[t.host, "127.0.0.1"], [t.remote, "198.51.100.2"]]) {
            const u = await udpClient(ns!, `${addr} 19200 50 1 30000 2000`);
            assert.equal(u.ok, 50, `${addr}: ${JSON.stringify(u)}`);
            assert.equal(u.hashOk, true);
          }
          const stats = (await ctlOk(sock, "stats")).stats as {
            splice: { opened: number };
            tcp: { opened: number };
            udp: { spliced: number; toTap: number };
          };
          assert.ok(stats.splice.opened >= 2, JSON.stringify(stats));
          assert.ok(stats.tcp.opened >= 2, JSON.stringify(stats));
          assert.ok(stats.udp.spliced >= 50 && stats.udp.toTap >= 50, JSON.stringify(stats));

          /* established connections outlive the removal: one spliced, one over the tap */
          const holdArgs = (addr: string) =>
            `exec ${PEER} client-hold ${addr} 19100 1 ${1 << 20} 3000`;
          const held = await Promise.all([
            background(["ip", "netns", "exec", t.host, "sh", "-c", holdArgs("127.0.0.1")], {
              ready: "held 1 refused 0",
            }),
            background(["ip", "netns", "exec", t.remote, "sh", "-c", holdArgs("198.51.100.2")], {
              ready: "held 1 refused 0",
            }),
          ]);
          try {
            assert.deepEqual(await ctlOk(sock, "remove", "tcp", "19100-19101:9100-9101"), {
              ok: true,
              removed: 1,
            });
            assert.deepEqual(await ctlOk(sock, "remove", "udp", "19200:9200"), {
              ok: true,
              removed: 1,
            });
            /* new connections are refused, on both paths */
            for (const [ns, addr] of [[t.host, "127.0.0.1"], [t.remote, "198.51.100.2"]]) {
              const r = await tcpClient(ns!, addr!, 19101, 1000);
              assert.notEqual(r.code, 0, `${addr} still reaches the removed forward`);
              assert.match(r.stderr, /ConnectionRefused|refused/i);
            }
            const u = await udpClient(t.host, "127.0.0.1 19200 3 1 100 300");
            assert.equal(u.ok, 0, "no UDP echo after the removal");
            /* the held connections finish their transfer */
            for (const h of held) {
              const s = await h.child.status;
              assert.equal(s.code, 0, "held connection completed");
            }
          } finally {
            for (const h of held) await h.stop();
          }
          assert.deepEqual(await ctlOk(sock, "list"), NONE);
        },
        { timeoutMs: 150000 },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
      /* the socket is removed at exit */
      await assert.rejects(Deno.stat(sock));
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name:
    "ctl: malformed requests get an error line, the loop carries on; missing socket is one line",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir({ prefix: "orzo-ctl-" });
    await Deno.chmod(dir, 0o777);
    const sock = `${dir}/orzo.ctl`;
    try {
      const { orzo } = await withGuestServers(
        t,
        ["--config-net", "-c", sock, "-t", "none", "-u", "none"],
        [],
        async () => {
          const conn = await Deno.connect({ transport: "unix", path: sock });
          const enc = new TextEncoder();
          const lines: string[] = [];
          const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
          let pending = "";
          const next = async () => {
            while (!pending.includes("\n")) {
              const r = await reader.read();
              if (r.done) return null;
              pending += r.value;
            }
            const i = pending.indexOf("\n");
            const l = pending.slice(0, i);
            pending = pending.slice(i + 1);
            lines.push(l);
            return JSON.parse(l);
          };
          const w = conn.writable.getWriter();
          for (
            const req of [
              "not json",
              "[1,2]",
              `{"op":"add","proto":"sctp","spec":"80"}`,
              `{"op":"add","proto":"tcp","spec":7}`,
              `{"op":"add","proto":"tcp","spec":"auto"}`,
              `{"op":"add","proto":"tcp","spec":"99999"}`,
              `{"op":"remove","proto":"tcp","spec":"4444"}`,
              `{"op":"explode"}`,
            ]
          ) {
            await w.write(enc.encode(req + "\n"));
            const r = await next();
            assert.equal(r?.ok, false, `${req}: ${lines.at(-1)}`);
            assert.equal(typeof r.error, "string");
          }
          /* a line longer than the limit: an error, the rest of it dropped */
          await w.write(enc.encode("x".repeat(5000)));
          const long = await next();
          assert.equal(long?.ok, false);
          assert.match(long.error, /longer than 4096/);
          await w.write(enc.encode("y".repeat(9000) + `}\n{"op":"list"}\n`));
          assert.deepEqual(await next(), NONE);
          conn.close();
          /* the loop still answers */
          assert.deepEqual(await ctlOk(sock, "list"), NONE);
          /* orzo runs as nobody now, but a port below 1024 binds: -c keeps
           * CAP_NET_BIND_SERVICE (isolate/isolate.ts keptCaps) */
          assert.deepEqual(await ctlOk(sock, "add", "tcp", "81"), { ok: true });
          assert.deepEqual(await ctlOk(sock, "add", "udp", "81"), { ok: true });
          const ss = await t.inHost(["ss", "-Hltnu", "sport = :81"]);
          assert.match(ss.stdout, /tcp/);
          assert.match(ss.stdout, /udp/);
        },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
      const r = await ctl(`${dir}/absent.ctl`, "list");
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `orzo ctl: Cannot connect to ${dir}/absent.ctl: ENOENT\n`);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  name: "ctl: -T and -U forwards added and removed at run time, guest loopback to host loopback",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir({ prefix: "orzo-ctl-" });
    await Deno.chmod(dir, 0o777);
    const sock = `${dir}/orzo.ctl`;
    /* servers on the host's loopback only: reachable from the guest through -T/-U alone */
    const servers = await Promise.all([
      background(
        ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose :: 9110`],
        { ready: "listening", timeoutMs: 180000 },
      ),
      background(
        ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${UDP_RUN} echo 127.0.0.1 9210 170`],
        { ready: "ready", timeoutMs: 180000 },
      ),
    ]);
    try {
      const { orzo } = await withGuestServers(
        t,
        ["--config-net", "-d", "-c", sock, "-t", "none", "-u", "none", "-T", "none", "-U", "none"],
        [`echo $$ > ${dir}/guest.pid; echo ready; exec sleep 150`],
        async () => {
          const guest = Number((await Deno.readTextFile(`${dir}/guest.pid`)).trim());
          assert.ok(guest > 0);
          const tcp = (addr: string, port: number, size: number) =>
            tcpClient(guest, addr, port, size);
          const udp = (args: string) => udpClient(guest, args);

          /* nothing forwarded yet: refused in the guest */
          assert.notEqual((await tcp("127.0.0.1", 19110, 1000)).code, 0);

          assert.deepEqual(await ctlOk(sock, "add", "tcp-ns", "19110:9110"), { ok: true });
          /* the option letter names the direction too */
          assert.deepEqual(await ctlOk(sock, "add", "-U", "19210:9210"), { ok: true });
          assert.deepEqual(await ctlOk(sock, "list"), {
            ...NONE,
            "tcp-ns": ["19110:9110"],
            "udp-ns": ["19210:9210"],
          });
          /* a conflicting -T rule is refused, one line */
          const bad = await ctl(sock, "add", "-T", "19110");
          assert.equal(bad.code, 1);
          assert.match(bad.stderr, /^orzo ctl: Conflicting port forwarding.*\n$/);
          /* the guest's ports in use: orzo's sockets on its loopback */
          const ss = await runIn(guest, ["ss", "-Hltnu", "sport = :19110 or sport = :19210"]);
          assert.match(ss.stdout, /tcp.*127\.0\.0\.1:19110/);
          assert.match(ss.stdout, /udp.*127\.0\.0\.1:19210/);

          /* TCP, both families, byte-checked through the splice path */
          for (const addr of ["127.0.0.1", "::1"]) {
            const r = await tcp(addr, 19110, 3 << 20);
            assert.equal(r.stdout.trim(), "ok", `${addr}: ${r.stderr}`);
          }
          /* UDP: every datagram echoed, every byte */
          const u = await udp("127.0.0.1 19210 50 1 30000 2000");
          assert.equal(u.ok, 50, JSON.stringify(u));
          assert.equal(u.hashOk, true);
          const stats = (await ctlOk(sock, "stats")).stats as {
            splice: { opened: number };
            udp: { spliced: number };
          };
          assert.ok(stats.splice.opened >= 2, JSON.stringify(stats));
          assert.ok(stats.udp.spliced >= 50, JSON.stringify(stats));

          assert.deepEqual(await ctlOk(sock, "remove", "-T", "19110:9110"), {
            ok: true,
            removed: 1,
          });
          assert.deepEqual(await ctlOk(sock, "remove", "udp-ns", "19210:9210"), {
            ok: true,
            removed: 1,
          });
          /* refused after the removal */
          const r = await tcp("127.0.0.1", 19110, 1000);
          assert.notEqual(r.code, 0, "the guest still reaches the removed forward");
          assert.match(r.stderr, /ConnectionRefused|refused/i);
          const gone = await udp("127.0.0.1 19210 3 1 100 300");
          assert.equal(gone.ok, 0, "no UDP echo after the removal");
          assert.deepEqual(await ctlOk(sock, "list"), NONE);
        },
        { timeoutMs: 150000 },
      );
      assert.equal(orzo.code, 0, orzo.stderr);
    } finally {
      for (const s of servers) await s.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await t.destroy();
    }
  },
});
