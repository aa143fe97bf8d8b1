/**
 * End-to-end tests of the splice path: loopback to loopback between the host
 * and the guest, with the bytes joined by splice(2) in the kernel.
 */

import assert from "node:assert/strict";
import {
  background,
  denoIn,
  denoSh,
  run,
  type RunResult,
  TCP_PEER,
  Topology,
} from "../helpers/topology.ts";

const isRoot = Deno.uid() === 0;
const PEER = denoSh(TCP_PEER);

for (
  const [fam, lo, any, guest] of [
    ["IPv4", "127.0.0.1", "0.0.0.0", "198.51.100.2"],
    ["IPv6", "::1", "::", "2001:db8:1::2"],
  ] as const
) {
  Deno.test({
    name: `splice ${fam}: -T PORT, the guest's loopback reaches a server on the host's loopback`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const srv = await background(
        ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose ${lo} 9050`],
        { ready: "listening" },
      );
      try {
        const r = await t.orzo([
          "--config-net",
          "-d",
          "-T",
          "9050",
          "--",
          "sh",
          "-c",
          `${PEER} client-halfclose ${lo} 9050 ${20 << 20}`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), "ok");
        assert.match(r.stderr, /TCP splice: opened 1, closed 1, failed 0, bytes [1-9]/);
      } finally {
        await srv.stop();
        await t.destroy();
      }
    },
  });

  Deno.test({
    name:
      `splice ${fam}: -t PORT from the host's loopback reaches the guest's address, not its loopback`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const dir = await Deno.makeTempDir();
      try {
        /* as pasta: over the guest's loopback interface to its own address, so
         * a service listening on the guest's loopback only stays private */
        const r = await withGuestServer(t, dir, ["--config-net", "-t", "9052,9053"], [
          `${PEER} serve-halfclose ${any} 9052 peers`,
          `${PEER} serve-halfclose ${lo} 9053 peers`,
        ], async () => {
          const c = await run(
            denoIn(t.host, TCP_PEER, ["client-halfclose", lo, "9052", "1000000"]),
          );
          assert.equal(c.stdout.trim(), "ok", c.stderr);
          const priv = await run(
            denoIn(t.host, TCP_PEER, ["client-halfclose", lo, "9053", "1000"]),
          );
          assert.notEqual(priv.code, 0, "the guest's loopback-only server is not reached");
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await peersSeen(dir), [`from ${guest}`]);
      } finally {
        await Deno.remove(dir, { recursive: true });
        await t.destroy();
      }
    },
  });

  Deno.test({
    name:
      `splice ${fam}: --host-lo-to-ns-lo: -t PORT from the host's loopback reaches the guest's ${lo}`,
    ignore: !isRoot,
    async fn() {
      const t = await Topology.create();
      const dir = await Deno.makeTempDir();
      try {
        const r = await withGuestServer(
          t,
          dir,
          ["--config-net", "--host-lo-to-ns-lo", "-d", "-t", "9054"],
          [`${PEER} serve-halfclose ${lo} 9054 peers`],
          async () => {
            const c = await run(
              denoIn(t.host, TCP_PEER, ["client-halfclose", lo, "9054", String(10 << 20)]),
            );
            assert.equal(c.stdout.trim(), "ok", c.stderr);
          },
        );
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await peersSeen(dir), [`from ${lo}`]);
        assert.match(r.stderr, /TCP splice: opened 1, closed 1, failed 0, bytes [1-9]/);
      } finally {
        await Deno.remove(dir, { recursive: true });
        await t.destroy();
      }
    },
  });
}

/**
 * Runs orzo whose command starts servers in the guest (their output goes to
 * DIR/out), waits until they listen, runs `client` on the host, then lets the
 * command end.
 */
async function withGuestServer(
  t: Topology,
  dir: string,
  args: string[],
  servers: string[],
  client: () => Promise<void>,
): Promise<RunResult> {
  const script = servers.map((s) => `${s} >>${dir}/out & p="$p $!"; `).join("") +
    `i=0; while [ ! -e ${dir}/done ] && [ $i -lt 400 ]; do sleep 0.1; i=$((i+1)); done; ` +
    `kill $p`;
  let ended: RunResult | null = null;
  const orzo = t.orzo([...args, "--", "sh", "-c", script], { timeoutMs: 60000 }).then((r) => {
    ended = r;
    return r;
  });
  try {
    for (let i = 0; i < 300; i++) {
      const out = await Deno.readTextFile(`${dir}/out`).catch(() => "");
      if (out.split("listening").length > servers.length) break;
      if (ended !== null) throw new Error(`orzo ended early: ${JSON.stringify(ended)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await client();
  } finally {
    await Deno.writeTextFile(`${dir}/done`, "");
  }
  return await orzo;
}

/** The "from ADDR" lines the guest's servers printed. */
async function peersSeen(dir: string): Promise<string[]> {
  const out = await Deno.readTextFile(`${dir}/out`);
  return out.split("\n").filter((l) => l.startsWith("from "));
}

Deno.test({
  name: "splice: -T auto (the default) follows the ports the host listens on",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const srv = await background(
      ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose 127.0.0.1 9051`],
      { ready: "listening" },
    );
    try {
      const r = await t.orzo([
        "--config-net",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 127.0.0.1 9051 100000`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "ok");
      const none = await t.orzo([
        "--config-net",
        "-T",
        "none",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 127.0.0.1 9051 100000`,
      ]);
      assert.notEqual(none.code, 0, "with -T none nothing listens on the guest's loopback");
    } finally {
      await srv.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name: "--splice-only: no tap in the namespace, -t and -T still work over loopback",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir();
    const srv = await background(
      ["ip", "netns", "exec", t.host, "sh", "-c", `exec ${PEER} serve-halfclose 127.0.0.1 9061`],
      { ready: "listening" },
    );
    try {
      const links = await t.orzo(["--splice-only", "--config-net", "--", "ip", "-o", "link"]);
      assert.equal(links.code, 0, links.stderr);
      const names = links.stdout.trim().split("\n").map((l) => l.split(":")[1]!.trim());
      assert.deepEqual(names, ["lo"], links.stdout);

      /* -t: host loopback to the guest's loopback (--host-lo-to-ns-lo is implied) */
      const r = await withGuestServer(
        t,
        dir,
        ["--splice-only", "-d", "-t", "9060", "-T", "none"],
        [`${PEER} serve-halfclose 127.0.0.1 9060 peers`],
        async () => {
          const c = await run(
            denoIn(t.host, TCP_PEER, ["client-halfclose", "127.0.0.1", "9060", String(10 << 20)]),
          );
          assert.equal(c.stdout.trim(), "ok", c.stderr);
          /* a client from outside: nowhere to go without a tap, turned away */
          const remote = await run(
            denoIn(t.remote, TCP_PEER, ["client-halfclose", "198.51.100.2", "9060", "1000"]),
            { env: { PEER_DEADLINE_MS: "10000" } },
          );
          assert.notEqual(remote.code, 0, "no tap path for a non-loopback client");
          assert.notEqual(remote.code, 2, "turned away, not left hanging");
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await peersSeen(dir), ["from 127.0.0.1"]);

      /* -T: the guest's loopback to a server on the host's loopback */
      const out = await t.orzo([
        "--splice-only",
        "-T",
        "9061",
        "--",
        "sh",
        "-c",
        `${PEER} client-halfclose 127.0.0.1 9061 ${10 << 20}`,
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout.trim(), "ok");
    } finally {
      await srv.stop();
      await Deno.remove(dir, { recursive: true });
      await t.destroy();
    }
  },
});
