/**
 * End-to-end tests of TCP translation over the tap, in the hermetic topology:
 * real clients and servers in the guest, host and remote namespaces, bytes
 * compared end to end by SHA-256.
 */

import assert from "node:assert/strict";
import { background, denoIn, denoSh, run, sh, TCP_PEER, Topology } from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const PEER = denoSh(TCP_PEER);

/** A file of random bytes and its SHA-256, shared by the transfer tests. */
let bigFile: { path: string; hash: string } | null = null;
async function big(): Promise<{ path: string; hash: string }> {
  if (bigFile !== null) return bigFile;
  const dir = await Deno.makeTempDir({ prefix: "orzo-tcp-" });
  const path = `${dir}/send.bin`;
  await sh(["sh", "-c", `head -c ${256 << 20} /dev/urandom > ${path}`]);
  const hash = (await sh(["sha256sum", path])).split(" ")[0]!;
  bigFile = { path, hash };
  return bigFile;
}

globalThis.addEventListener("unload", () => {
  if (bigFile !== null) {
    Deno.removeSync(bigFile.path.replace(/\/send\.bin$/, ""), { recursive: true });
  }
});

async function sha(path: string): Promise<string> {
  return (await sh(["sha256sum", path])).split(" ")[0]!;
}

function inRemote(t: Topology, cmd: string, ready?: string) {
  return background(["ip", "netns", "exec", t.remote, "sh", "-c", cmd], {
    ready,
    timeoutMs: 90000,
  });
}

for (
  const [fam, remoteAddr, gw] of [["IPv4", "203.0.113.10", "198.51.100.1"], [
    "IPv6",
    "2001:db8:2::10",
    "2001:db8:1::1",
  ]] as const
) {
  const url = fam === "IPv4" ? remoteAddr : `[${remoteAddr}]`;

  Deno.test({
    name: `TCP ${fam}: curl in the guest fetches a page from a remote server`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const srv = await inRemote(t, `exec ${PEER} serve-http ${remoteAddr} 8080`, "listening");
      try {
        const r = await t.orzo([
          "--config-net",
          "--",
          "curl",
          "-sS",
          "--max-time",
          "10",
          `http://${url}:8080/`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "hello from remote\n");
      } finally {
        await srv.stop();
        await t.destroy();
      }
    },
  });

  Deno.test({
    name: `TCP ${fam}: 256 MiB each way between guest and remote, SHA-256 checked`,
    ignore: !isRoot,
    async fn() {
      const f = await big();
      const t = await Topology.create();
      const dir = await Deno.makeTempDir({ prefix: "orzo-tcp-" });
      const listen = fam === "IPv4" ? "TCP4-LISTEN" : "TCP6-LISTEN";
      const bind = fam === "IPv4" ? remoteAddr : `[${remoteAddr}]`;
      const up = await inRemote(
        t,
        `exec socat -u ${listen}:9001,bind=${bind},reuseaddr OPEN:${dir}/up.bin,creat,trunc`,
      );
      const down = await inRemote(
        t,
        `exec socat -u OPEN:${f.path} ${listen}:9002,bind=${bind},reuseaddr`,
      );
      try {
        await new Promise((r) => setTimeout(r, 300));
        const sockAddr = fam === "IPv4" ? remoteAddr : `[${remoteAddr}]`;
        const r = await t.orzo([
          "--config-net",
          "--",
          "sh",
          "-c",
          `socat -u OPEN:${f.path} TCP:${sockAddr}:9001 && ` +
          `socat -u TCP:${sockAddr}:9002 OPEN:${dir}/down.bin,creat,trunc`,
        ], { timeoutMs: 90000 });
        assert.equal(r.code, 0, r.stderr);
        await up.child.status;
        assert.equal(await sha(`${dir}/up.bin`), f.hash, "guest -> remote bytes");
        assert.equal(await sha(`${dir}/down.bin`), f.hash, "remote -> guest bytes");
      } finally {
        await up.stop();
        await down.stop();
        await Deno.remove(dir, { recursive: true });
        await t.destroy();
      }
    },
  });

  Deno.test({
    name: `TCP ${fam}: the gateway address reaches a server on the host's loopback`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const lo = fam === "IPv4" ? "127.0.0.1" : "::1";
      const srv = await background(
        ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose ${lo} 9003`],
        { ready: "listening" },
      );
      try {
        const host = fam === "IPv4" ? gw : gw;
        const r = await t.orzo([
          "--config-net",
          "--",
          "sh",
          "-c",
          `${PEER} client-halfclose ${host} 9003 100000`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), "ok");
      } finally {
        await srv.stop();
        await t.destroy();
      }
    },
  });

  Deno.test({
    name: `TCP ${fam}: the remote reaches a guest server through -t, also with a translated port`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const hostAddr = fam === "IPv4" ? "198.51.100.2" : "2001:db8:1::2";
      const guestAny = fam === "IPv4" ? "0.0.0.0" : "::";
      try {
        /* the servers stop, by their PIDs, once the test leaves a file */
        const done = await Deno.makeTempFile({ prefix: "orzo-done-" });
        await Deno.remove(done);
        const script =
          `${PEER} serve-halfclose ${guestAny} 9004 & a=$!; ${PEER} serve-halfclose ${guestAny} 80 & ` +
          `b=$!; i=0; while [ ! -e ${done} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ` +
          `kill $a $b; rm -f ${done}`;
        const orzo = t.orzo([
          "--config-net",
          "-t",
          "9004",
          "-t",
          "9005:80",
          "--",
          "sh",
          "-c",
          script,
        ], {
          timeoutMs: 60000,
        });
        await new Promise((r) => setTimeout(r, 2500));
        const c1 = await run(
          denoIn(t.remote, TCP_PEER, ["client-halfclose", hostAddr, "9004", String(3 << 20)]),
        );
        assert.equal(c1.stdout.trim(), "ok", c1.stderr);
        const c2 = await run(
          denoIn(t.remote, TCP_PEER, ["client-halfclose", hostAddr, "9005", "1000"]),
        );
        assert.equal(c2.stdout.trim(), "ok", c2.stderr);
        await Deno.writeTextFile(done, "");
        const r = await orzo;
        void r;
      } finally {
        await t.destroy();
      }
    },
  });
}

Deno.test({
  name:
    "TCP: without tap offloads (orzo computes the checksums) the guest's kernel accepts the frames",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await inRemote(t, `exec ${PEER} serve-echo 203.0.113.10 9014`, "listening");
    const srv6 = await inRemote(t, `exec ${PEER} serve-echo 2001:db8:2::10 9014`, "listening");
    try {
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        `${PEER} client-many 203.0.113.10 9014 4 4000000 && ` +
        `${PEER} client-many 2001:db8:2::10 9014 4 4000000`,
      ], { env: { ORZO_NO_OFFLOAD: "1" }, timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "ok 4\nok 4");
    } finally {
      await srv.stop();
      await srv6.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: 500 concurrent connections each carry 1 MiB both ways",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await inRemote(t, `exec ${PEER} serve-echo 203.0.113.10 9010`, "listening");
    try {
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        `ulimit -n 4096; PEER_DEADLINE_MS=80000 ${PEER} client-many 203.0.113.10 9010 500 1048576`,
      ], { timeoutMs: 90000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "ok 500");
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name:
    "TCP: --map-guest-addr reaches the host's own address; --no-map-gw reaches the real gateway",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* a server on the host's own address, and one on the gateway (the remote side) */
    const hostSrv = await background(
      ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose 198.51.100.2 9020`],
      { ready: "listening" },
    );
    const gwSrv = await inRemote(t, `exec ${PEER} serve-halfclose 198.51.100.1 9021`, "listening");
    try {
      const r = await t.orzo([
        "--config-net",
        "--map-guest-addr",
        "169.254.1.2",
        "--no-map-gw",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 169.254.1.2 9020 1000 && ${PEER} client-halfclose 198.51.100.1 9021 1000`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "ok\nok\n");
    } finally {
      await hostSrv.stop();
      await gwSrv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: -t auto (the default) forwards the ports the guest listens on, while it does",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const orzo = t.orzo([
        "--config-net",
        "-d",
        "--",
        "sh",
        "-c",
        `${PEER} serve-halfclose 0.0.0.0 9031 & p=$!; sleep 3; kill $p; sleep 3`,
      ], { timeoutMs: 30000 });
      await new Promise((r) => setTimeout(r, 2300));
      const peer = (args: string[]) => denoIn(t.remote, TCP_PEER, args);
      const on = await run(peer(["client-halfclose", "198.51.100.2", "9031", "1000"]));
      assert.equal(on.stdout.trim(), "ok", on.stderr);
      await new Promise((r) => setTimeout(r, 2500));
      const off = await run(peer(["client-halfclose", "198.51.100.2", "9031", "1000"]));
      assert.notEqual(off.code, 0);
      assert.match(off.stderr, /refused/i);
      const r = await orzo;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /auto forwarding: TCP port 9031 \(IPv4\) closed/);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: half-close, the client shuts down writing and then reads the whole reply",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await inRemote(t, `exec ${PEER} serve-halfclose 203.0.113.10 9011`, "listening");
    try {
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 203.0.113.10 9011 5000000`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "ok");
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: a refused connection is reported to the guest's client as refused",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    try {
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        "curl -sS --max-time 5 http://203.0.113.10:9/ 2>&1; curl -sS --max-time 5 http://[2001:db8:2::10]:9/ 2>&1; true",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines.length, 2, r.stdout);
      for (const l of lines) assert.match(l, /Couldn't connect|Connection refused/, l);
      assert.doesNotMatch(r.stdout, /timed out/);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: a server reset in the middle of a transfer is seen by the guest",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* the server reads a little, then closes with SO_LINGER 0: a reset */
    const srv = await inRemote(
      t,
      "exec timeout -s TERM 2 socat -u TCP-LISTEN:9012,bind=203.0.113.10,reuseaddr,linger=0 " +
        "SYSTEM:'head -c 100000 >/dev/null; sleep 10'",
    );
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        "head -c 200000000 /dev/zero | socat -u - TCP:203.0.113.10:9012 2>&1; echo status=$?",
      ], { timeoutMs: 30000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Connection reset by peer|Broken pipe/, r.stdout);
      assert.match(r.stdout, /status=[1-9]/, r.stdout);
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: iperf3 runs 10 s in each direction",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await inRemote(t, "exec iperf3 -s -B 203.0.113.10 -p 5201");
    try {
      await new Promise((r) => setTimeout(r, 300));
      /* per test process: other runs of this file may share /tmp */
      const up = `/tmp/orzo-iperf-up-${Deno.pid}.json`;
      const down = `/tmp/orzo-iperf-down-${Deno.pid}.json`;
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        `iperf3 -J -c 203.0.113.10 -t 10 > ${up} && ` +
        `iperf3 -J -R -c 203.0.113.10 -t 10 > ${down}; echo status=$?`,
      ], { timeoutMs: 60000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /status=0/);
      for (const f of [up, down]) {
        const j = JSON.parse(await Deno.readTextFile(f));
        const got = j.end.sum_received.bytes as number;
        assert.ok(got > 0, `${f}: bytes received`);
        assert.ok(j.end.sum_received.seconds >= 9.5, `${f}: ran 10 s`);
        await Deno.remove(f);
      }
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "TCP: the guest's namespace vanishing mid-transfer leaves no fd behind and orzo exits",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const guest = `orzo-gt-${Deno.pid}`;
    const log = await Deno.makeTempFile();
    const pidFile = await Deno.makeTempFile();
    await sh(["ip", "netns", "add", guest]);
    const sink = await inRemote(
      t,
      "exec socat -u TCP-LISTEN:9013,bind=203.0.113.10,reuseaddr,fork /dev/null",
    );
    let xfer: Awaited<ReturnType<typeof background>> | null = null;
    try {
      const r = await t.orzo(["--config-net", "-d", "-l", log, "-P", pidFile, "--netns", guest]);
      assert.equal(r.code, 0, r.stderr);
      const pid = Number((await Deno.readTextFile(pidFile)).trim());
      xfer = await background([
        "ip",
        "netns",
        "exec",
        guest,
        "sh",
        "-c",
        "head -c 2000000000 /dev/zero | socat -u - TCP:203.0.113.10:9013",
      ]);
      await new Promise((r) => setTimeout(r, 700));
      await run(["sh", "-c", `ip netns pids ${guest} | xargs -r kill -9`]);
      await sh(["ip", "netns", "del", guest]);
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        try {
          Deno.statSync(`/proc/${pid}`);
          await new Promise((r) => setTimeout(r, 50));
        } catch {
          gone = true;
        }
      }
      assert.ok(gone, "orzo exited");
      const text = await Deno.readTextFile(log);
      const m = text.match(/fds: (\d+) when the loop started, (\d+) at exit/);
      assert.ok(m, text);
      assert.ok(Number(m[2]) <= Number(m[1]), m[0]);
      assert.match(text, /TCP: opened [1-9]/);
    } finally {
      await xfer?.stop();
      await sink.stop();
      await run(["ip", "netns", "del", guest]);
      await Deno.remove(log);
      /* orzo removes its PID file at exit */
      await Deno.remove(pidFile).catch(() => {});
      await t.destroy();
    }
  },
});
