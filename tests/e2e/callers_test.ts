/**
 * End-to-end tests of orzo standing in for pasta under its real callers:
 * each caller's exact argv (../shared/REFERENCE.md §2), against a namespace
 * made the way that caller makes it, checking what the caller relies on:
 *
 * - exit 0 only once the network is up (the addresses are read right after);
 * - the addresses, routes and MTU;
 * - DNS at the forwarded address;
 * - TCP out to the remote namespace, byte-checked;
 * - the gateway reaching the host's loopback where it is mapped;
 * - exit when the child or the namespace goes away.
 *
 * RootlessKit runs pasta as an ordinary user against its child, which sits in
 * a user and network namespace the user owns (setgroups denied); Podman runs
 * it as root against `ip netns add`, or, rootless, as root of its own user
 * namespace against a netns file bind-mounted there (with --pid for the
 * rootless-netns). With PASTA_BIN set, the same tests run upstream pasta,
 * which proves the tests themselves.
 */

import assert from "node:assert/strict";
import { asUser, type Background, background, run, sh, Topology } from "../helpers/topology.ts";
import { dnsServer, hostResolvConf } from "../helpers/dns.ts";
import { installPasta, type PastaBin } from "../helpers/pasta_bin.ts";

const isRoot = Deno.uid() === 0;
/** The ordinary user the rootless callers run as. */
const USER = 65534;
const DATA_SIZE = 4 << 20;
const REMOTE_PORT = 5001;
const LOOPBACK_PORT = 5002;

interface Ip {
  ifname: string;
  mtu: number;
  "addr_info": { local: string; prefixlen: number; family: string }[];
}

interface Route {
  dst: string;
  gateway?: string;
  dev: string;
}

/** The world of one caller test: topology, resolver, sinks, data. */
class CallerWorld {
  readonly data: string;
  private sinks = new Map<string, Background>();

  private constructor(
    readonly t: Topology,
    readonly dir: string,
    readonly pasta: PastaBin,
    private cleanups: (() => Promise<void>)[],
  ) {
    this.data = `${dir}/data`;
  }

  static async create(): Promise<CallerWorld> {
    const t = await Topology.create();
    const cleanups: (() => Promise<void>)[] = [];
    const dir = await Deno.makeTempDir({ prefix: "orzo-callers-" });
    cleanups.push(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    try {
      await Deno.chmod(dir, 0o755);
      await Deno.mkdir(`${dir}/state`);
      await Deno.chmod(`${dir}/state`, 0o777);
      const data = new Uint8Array(DATA_SIZE);
      for (let o = 0; o < DATA_SIZE; o += 65536) {
        crypto.getRandomValues(data.subarray(o, o + 65536));
      }
      await Deno.writeFile(`${dir}/data`, data, { mode: 0o644 });
      cleanups.push(await hostResolvConf(t, "nameserver 203.0.113.10\n"));
      const dns = await dnsServer(t);
      cleanups.push(() => dns.stop());
      const pasta = await installPasta();
      cleanups.push(() => pasta.remove());
      return new CallerWorld(t, dir, pasta, cleanups);
    } catch (e) {
      for (const c of cleanups.reverse()) await c();
      await t.destroy();
      throw e;
    }
  }

  /** Starts a one-connection TCP sink writing to `${dir}/NAME`. */
  async sink(ns: string, addr: string, port: number, name: string): Promise<Background> {
    const s = await background([
      "ip",
      "netns",
      "exec",
      ns,
      "socat",
      "-u",
      `TCP-LISTEN:${port},bind=${addr},reuseaddr`,
      `CREATE:${this.dir}/${name}`,
    ], { timeoutMs: 90000 });
    this.sinks.set(name, s);
    /* the caller script waits for this before it tears anything down: the
     * client's exit only means its kernel holds the rest of the data */
    s.child.status.then(() => Deno.writeTextFile(`${this.dir}/state/${name}.done`, ""))
      .catch(() => {});
    for (let i = 0; i < 100; i++) {
      const r = await run(["ip", "netns", "exec", ns, "ss", "-Hltn", `sport = :${port}`]);
      if (r.stdout.trim() !== "") return s;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`sink on ${addr}:${port} did not start`);
  }

  /** The size of `${dir}/NAME`, or -1. */
  async size(name: string): Promise<number> {
    return (await Deno.stat(`${this.dir}/${name}`).catch(() => ({ size: -1 }))).size;
  }

  /** Whether `${dir}/NAME` holds exactly the test data, once its sink is done. */
  async received(name: string): Promise<boolean> {
    const sink = this.sinks.get(name);
    if (sink === undefined) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      sink.child.status.then(() => true),
      new Promise<false>((res) => {
        timer = setTimeout(() => res(false), 10000);
      }),
    ]);
    clearTimeout(timer);
    if (!done) return false;
    const a = await Deno.readFile(`${this.dir}/${name}`).catch(() => new Uint8Array());
    const b = await Deno.readFile(this.data);
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /**
   * Runs a caller script in the host namespace, as USER or as root.
   * @returns its key=value lines
   */
  async script(text: string, ordinary: boolean): Promise<Map<string, string>> {
    const file = `${this.dir}/caller.sh`;
    await Deno.writeTextFile(file, text, { mode: 0o755 });
    await Deno.chmod(file, 0o755);
    const who = ordinary ? asUser(USER) : [];
    const r = await this.t.inHost([...who, "bash", file], { timeoutMs: 120000 });
    const out = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
    }
    out.set("stderr", r.stderr);
    return out;
  }

  async destroy(): Promise<void> {
    for (const s of this.sinks.values()) await s.stop();
    for (const c of this.cleanups.reverse()) await c();
    await this.t.destroy();
  }
}

/**
 * The checks every caller relies on, as shell: `$IN` enters the guest's
 * namespaces, `$DIR` is the world's directory, `$MARK` finds the translator's
 * processes (pgrep -f), `$GW` is the gateway to try for the host's loopback
 * ("" to skip), `$DNS` the forwarded DNS address. Then `gone_when` runs its
 * argument and reports whether the translator exited within 5 s.
 */
const CHECKS = `
guest() { $IN "$@"; }
guest ip -j addr show > $DIR/state/addr.json
guest ip -j route show > $DIR/state/route.json
echo "dns=$(guest dig +short +time=2 +tries=2 @$DNS a.orzo.test A | tr '\\n' ' ')"
delivered() { i=0; while [ ! -e "$DIR/state/$1.done" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; }
guest timeout 20 socat -u OPEN:$DIR/data TCP:203.0.113.10:${REMOTE_PORT}; echo "tcp=$?"
delivered remote.recv
if [ -n "$GW" ]; then
  guest timeout 20 socat -u OPEN:$DIR/data TCP:$GW:${LOOPBACK_PORT}; echo "gw=$?"
  delivered lo.recv
fi
PIDS=$(pgrep -f -- "$MARK" | tr '\\n' ' ')
echo "pids=$PIDS"
gone_when() {
  "$@"
  gone=no; i=0
  while [ $i -lt 100 ]; do
    alive=""; for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && { gone=yes; break; }
    sleep 0.05; i=$((i+1))
  done
  echo "gone=$gone"
  for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
}
`;

/** Waits in shell until the process $CP has left our network namespace. */
const WAIT_NETNS = `
me=$(readlink /proc/self/ns/net); i=0
while [ "$(readlink /proc/$CP/ns/net 2>/dev/null)" = "$me" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
`;

function addrs(w: CallerWorld, ifname: string): Promise<Ip> {
  return Deno.readTextFile(`${w.dir}/state/addr.json`).then((s) => {
    const all = JSON.parse(s) as Ip[];
    const i = all.find((x) => x.ifname === ifname);
    assert.ok(i !== undefined, `no ${ifname} in ${s}`);
    return i;
  });
}

async function defaultRoute(w: CallerWorld): Promise<Route | undefined> {
  const routes = JSON.parse(await Deno.readTextFile(`${w.dir}/state/route.json`)) as Route[];
  return routes.find((r) => r.dst === "default");
}

/** Asserts what every caller relies on, from a script's output. */
async function assertCommon(
  w: CallerWorld,
  out: Map<string, string>,
  want: {
    ifname: string;
    addr: string;
    prefix: number;
    gateway: string;
    gw: boolean;
    quits?: boolean;
  },
): Promise<void> {
  const err = out.get("stderr") ?? "";
  assert.equal(out.get("exit"), "0", `the translator failed: ${err}`);
  const tap = await addrs(w, want.ifname);
  assert.equal(tap.mtu, 65520);
  assert.ok(
    tap["addr_info"].some((a) => a.local === want.addr && a.prefixlen === want.prefix),
    JSON.stringify(tap),
  );
  const route = await defaultRoute(w);
  assert.equal(route?.gateway, want.gateway, JSON.stringify(route));
  assert.equal(route?.dev, want.ifname);
  assert.equal(out.get("dns")?.trim(), "192.0.2.123", err);
  assert.equal(out.get("tcp"), "0", err);
  assert.ok(
    await w.received("remote.recv"),
    `the remote namespace received the data intact (got ${await w.size("remote.recv")} bytes)`,
  );
  if (want.gw) {
    assert.equal(out.get("gw"), "0", err);
    assert.ok(await w.received("lo.recv"), "the host's loopback received the data intact");
  }
  assert.notEqual(out.get("pids")?.trim(), "", "the translator runs in the background");
  if (want.quits !== false) {
    assert.equal(out.get("gone"), "yes", "the translator exits when its namespace goes away");
  }
}

/** RootlessKit's argv (pkg/network/pasta/pasta.go), up to the target. */
const ROOTLESSKIT_ARGV = "--stderr --ns-ifname=tap0 --mtu=65520 --config-net " +
  "--address=10.0.2.100 --netmask=24 --gateway=10.0.2.2 --dns-forward=10.0.2.3 " +
  "--tcp-ports=none --udp-ports=none";

const ROOTLESSKIT_WANT = {
  ifname: "tap0",
  addr: "10.0.2.100",
  prefix: 24,
  gateway: "10.0.2.2",
  gw: true,
};

Deno.test({
  name: "RootlessKit: an ordinary user attaches to its child's user and network namespace by PID",
  ignore: !isRoot,
  async fn() {
    const w = await CallerWorld.create();
    try {
      await w.sink(w.t.remote, "203.0.113.10", REMOTE_PORT, "remote.recv");
      await w.sink(w.t.host, "127.0.0.1", LOOPBACK_PORT, "lo.recv");
      const out = await w.script(
        `set -u
DIR=${w.dir}
unshare -Urn sleep 60 &
CP=$!
${WAIT_NETNS}
echo "setgroups=$(cat /proc/$CP/setgroups)"
${w.pasta.path} ${ROOTLESSKIT_ARGV} $CP
echo "exit=$?"
IN="nsenter --preserve-credentials -U -n -t $CP" MARK="--dns-forward=10.0.2.3" GW=10.0.2.2 DNS=10.0.2.3
${CHECKS}
gone_when kill $CP
`,
        true,
      );
      assert.equal(out.get("setgroups"), "deny", "the child's namespace denies setgroups");
      await assertCommon(w, out, ROOTLESSKIT_WANT);
    } finally {
      await w.destroy();
    }
  },
});

Deno.test({
  name: "RootlessKit: an ordinary user attaches with --userns and --netns (detached netns)",
  ignore: !isRoot,
  async fn() {
    const w = await CallerWorld.create();
    try {
      await w.sink(w.t.remote, "203.0.113.10", REMOTE_PORT, "remote.recv");
      await w.sink(w.t.host, "127.0.0.1", LOOPBACK_PORT, "lo.recv");
      /* the child keeps its netns on a bind mount in its own mount namespace */
      const out = await w.script(
        `set -u
DIR=${w.dir}
S=$DIR/state
unshare -Urm sh -c "touch $S/netns && unshare -n mount --bind /proc/self/ns/net $S/netns && exec sleep 60" &
CP=$!
NS=/proc/$CP/root$S/netns
i=0; while [ "$(stat -f -c %T $NS 2>/dev/null)" != nsfs ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
${w.pasta.path} ${ROOTLESSKIT_ARGV} --userns=/proc/$CP/ns/user --netns=$NS
echo "exit=$?"
IN="nsenter --preserve-credentials -U -t $CP --net=$NS" MARK="--dns-forward=10.0.2.3" GW=10.0.2.2 DNS=10.0.2.3
${CHECKS}
gone_when kill $CP
`,
        true,
      );
      /* upstream pasta (2026_07_16) does not notice that a netns reached
       * through /proc/PID/root is gone: orzo's check of the path does */
      await assertCommon(w, out, { ...ROOTLESSKIT_WANT, quits: w.pasta.kind === "orzo" });
    } finally {
      await w.destroy();
    }
  },
});

/**
 * Podman's argv (common/libnetwork/pasta/pasta_linux.go) for NETNS, after the
 * pasta_options of containers.conf (`extra`).
 */
function podmanArgv(netns: string, mapGw: boolean, extra = ""): string {
  return `--config-net ${extra}--dns-forward 169.254.1.1 -t none -u none -T none -U none ` +
    `${mapGw ? "" : "--no-map-gw "}--quiet --netns ${netns} --map-guest-addr 169.254.1.2`;
}

const PODMAN_WANT = {
  ifname: "eth0",
  addr: "198.51.100.2",
  prefix: 24,
  gateway: "198.51.100.1",
  gw: false,
};

for (const { runas, mapGw } of [{ runas: "", mapGw: false }, { runas: "0:0", mapGw: true }]) {
  Deno.test({
    name: `Podman (rootful): root attaches to an 'ip netns add' namespace, ${
      runas === "" ? "without --runas" : `--runas ${runas}`
    }${mapGw ? ", --map-gw" : ""}`,
    ignore: !isRoot,
    async fn() {
      const w = await CallerWorld.create();
      const ns = `${w.t.host}-ctr`;
      try {
        await sh(["ip", "netns", "add", ns]);
        await w.sink(w.t.remote, "203.0.113.10", REMOTE_PORT, "remote.recv");
        if (mapGw) await w.sink(w.t.host, "127.0.0.1", LOOPBACK_PORT, "lo.recv");
        const extra = runas === "" ? "" : `--runas ${runas} `;
        const out = await w.script(
          `set -u
DIR=${w.dir}
${w.pasta.path} ${podmanArgv(`/run/netns/${ns}`, mapGw, extra)}
echo "exit=$?"
IN="ip netns exec ${ns}" MARK="--netns /run/netns/${ns}" GW=${
            mapGw ? "198.51.100.1" : '""'
          } DNS=169.254.1.1
${CHECKS}
gone_when ip netns del ${ns}
`,
          false,
        );
        if (w.pasta.kind === "pasta" && runas === "") {
          /* upstream pasta switches to nobody before it joins the namespace,
           * which then fails; orzo switches once the network is set up */
          assert.notEqual(out.get("exit"), "0");
          assert.match(out.get("stderr") ?? "", /Couldn't switch to pasta namespaces/);
          return;
        }
        await assertCommon(w, out, { ...PODMAN_WANT, gw: mapGw });
      } finally {
        await run(["ip", "netns", "del", ns]);
        await w.destroy();
      }
    },
  });
}

Deno.test({
  name:
    "Podman (rootless-netns): root of the user's namespace attaches to a bind-mounted netns, --pid",
  ignore: !isRoot,
  async fn() {
    const w = await CallerWorld.create();
    try {
      await w.sink(w.t.remote, "203.0.113.10", REMOTE_PORT, "remote.recv");
      /* Podman's user namespace and mount namespace: the user mapped to root */
      const inner = `${w.dir}/state/rootless.sh`;
      await Deno.writeTextFile(
        inner,
        `set -u
DIR=${w.dir}
S=$DIR/state
mkdir -p $S/netns && touch $S/netns/rootless-netns
unshare -n mount --bind /proc/self/ns/net $S/netns/rootless-netns
${w.pasta.path} ${podmanArgv("$S/netns/rootless-netns", false)} --pid $S/rootless-netns-conn.pid
echo "exit=$?"
echo "pidfile=$(cat $S/rootless-netns-conn.pid)"
IN="nsenter --net=$S/netns/rootless-netns" MARK="--pid $S/rootless-netns-conn.pid" GW="" DNS=169.254.1.1
${CHECKS}
gone_when sh -c "umount -l $S/netns/rootless-netns && rm $S/netns/rootless-netns"
`,
      );
      await Deno.chmod(inner, 0o755);
      const out = await w.script(`unshare -Urm bash ${inner}\n`, true);
      await assertCommon(w, out, PODMAN_WANT);
      const pids = (out.get("pids") ?? "").trim().split(" ");
      assert.ok(pids.includes(out.get("pidfile") ?? "-"), `pid file names ${pids}`);
    } finally {
      await w.destroy();
    }
  },
});
