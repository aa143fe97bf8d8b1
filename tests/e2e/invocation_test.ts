/**
 * End-to-end tests of how orzo is started: the launcher, a link named pasta,
 * the bundled single file, --help and --version.
 */

import assert from "node:assert/strict";
import { REPO, run, Topology } from "../helpers/topology.ts";
import { installOrzo } from "../helpers/pasta_bin.ts";

const isRoot = Deno.uid() === 0;

type IpAddr = { ifname: string; "addr_info": { local: string }[] };

Deno.test({
  name: "a link named pasta behaves as orzo --pasta",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    const dir = await Deno.makeTempDir();
    try {
      await Deno.symlink(`${REPO}/orzo`, `${dir}/pasta`);
      const r = await t.inHost([
        `${dir}/pasta`,
        "--config-net",
        "--",
        "ip",
        "-j",
        "addr",
        "show",
        "eth0",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const link = (JSON.parse(r.stdout) as IpAddr[])[0]!;
      assert.ok(link["addr_info"].some((a) => a.local === "198.51.100.2"), r.stdout);
      const v = await run([`${dir}/pasta`, "--version"]);
      assert.match(v.stdout, /^pasta \(orzo\) \d+\.\d+\.\d+/);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await t.destroy();
    }
  },
});

Deno.test({
  name: "the bundled single file runs pasta mode with --allow-ffi alone",
  ignore: !isRoot,
  async fn() {
    const t = await Topology.create();
    /* bundled, and run by a copy of deno with --allow-ffi alone (pasta_bin.ts) */
    const bin = await installOrzo();
    try {
      const r = await t.inHost([
        bin.path,
        "--config-net",
        "--",
        "ip",
        "-j",
        "addr",
        "show",
        "eth0",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const link = (JSON.parse(r.stdout) as IpAddr[])[0]!;
      assert.ok(link["addr_info"].some((a) => a.local === "2001:db8:1::2"), r.stdout);
    } finally {
      await bin.remove();
      await t.destroy();
    }
  },
});

Deno.test("orzo --help lists pasta's options and exits 0", async () => {
  const r = await run([`${REPO}/orzo`, "--pasta", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (const opt of ["--config-net", "--netns", "--tcp-ports", "--pcap", "--map-guest-addr"]) {
    assert.ok(r.stdout.includes(opt), `help mentions ${opt}`);
  }
});

Deno.test("an option whose feature is not built yet fails with one line", async () => {
  const r = await run([`${REPO}/orzo`, "--pasta", "--freebind", "-f"]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /not supported yet/);
});

Deno.test("--print-capabilities: no vhost-user back-end yet, so one line and status 1", async () => {
  for (const args of [["--print-capabilities"], ["--print-capabilities", "--no-such-option"]]) {
    const r = await run([`${REPO}/orzo`, ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "", "no capabilities JSON for a back-end orzo does not have");
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /--print-capabilities: no vhost-user back-end/);
  }
});

Deno.test("-s PATH with V8's perf map on: a free path is bound, not reported in use", async () => {
  /* lazily compiled, errno() used to be compiled between connect() and the
   * read of its errno, and the perf map write changed errno */
  const dir = await Deno.makeTempDir();
  const sock = `${dir}/s.sock`;
  try {
    const r = await run([
      "sh",
      "-c",
      [
        /* in the temporary directory: V8 writes its log there too */
        `cd "$3" || exit 1; DENO_V8_FLAGS=--perf-basic-prof "$0" run --allow-ffi "$1" -f -s "$2" &`,
        `p=$!`,
        `for i in $(seq 200); do [ -S "$2" ] && break; kill -0 $p 2>/dev/null || break; sleep 0.05; done`,
        `kill $p 2>/dev/null; wait $p; rm -f /tmp/perf-$p.map`,
      ].join("\n"),
      Deno.execPath(),
      `${REPO}/main.ts`,
      sock,
      dir,
    ], { timeoutMs: 30000 });
    assert.match(r.stdout + r.stderr, /UNIX domain socket bound at /, r.stderr);
    assert.doesNotMatch(r.stderr, /already in use/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
