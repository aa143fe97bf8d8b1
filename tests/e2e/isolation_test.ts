/**
 * End-to-end tests of host isolation by address, in the hermetic topology: a
 * guest that writes its own frames (AF_PACKET on its interface, so that its
 * kernel's routing has no say) must not reach a service that listens only
 * on the host namespace's loopback, through any address that is not a
 * configured mapping: loopback, unspecified, multicast, broadcast, port 0,
 * IPv4-mapped IPv6, or a source address no guest owns. A recording server
 * on 127.0.0.1 and ::1 (TCP and UDP) notes everything that reaches it; the
 * same frames towards the mapped gateway do reach it, which shows that the
 * frames themselves work. orzo keeps running: an echo through it
 * afterwards is compared byte for byte.
 *
 * With PASTA_BIN set, the same scenarios run upstream pasta (as root with
 * --runas 0:0, so that it may join the test's namespaces), without orzo's
 * counters. The one expected difference: an IPv4-mapped loopback address in
 * an IPv6 frame kills upstream pasta (an assertion), so its scenarios leave
 * those frames out, and a test of its own shows the difference.
 */

import assert from "node:assert/strict";
import {
  background,
  denoIn,
  denoSh,
  INJECT,
  orzoIn,
  RECORD_SERVER,
  run,
  type RunResult,
  TCP_PEER,
  Topology,
} from "../helpers/topology.ts";
import { type RawFrame, rawFrameHex } from "../helpers/raw_frames.ts";

const isRoot = Deno.uid() === 0;
/** Upstream pasta, to prove the test against the reference. */
const REF = Deno.env.get("PASTA_BIN") || undefined;
/** The translator's command line, up to its options. */
const TRANSLATOR = REF !== undefined
  ? [REF, "--runas", "0:0", "-f"]
  : orzoIn(null, ["--pasta", "-d"]);
const PEER = denoSh(TCP_PEER);
const INJECT_ETH0 = `${denoSh(INJECT)} eth0`;
/** The recording server's port, on the host namespace's loopback only. */
const PORT = 47001;
const G4 = "198.51.100.2";
const G6 = "2001:db8:1::2";
const GW4 = "198.51.100.1";
const GW6 = "2001:db8:1::1";

/** A TCP SYN and a UDP datagram from src to dst (tagged with `tag`), same ports. */
function both(v6: boolean, src: string, dst: string, tag: string, sport = 40000, dport = PORT) {
  return [
    { proto: "tcp", v6, src, dst, sport, dport },
    { proto: "udp", v6, src, dst, sport, dport, payload: tag },
  ] as RawFrame[];
}

/** Frames refused with or without the gateway mapping (TCP, UDP and ICMP). */
function refusedAlways(): RawFrame[] {
  return [
    ...both(false, G4, "127.0.0.1", "lo4"),
    ...both(false, G4, "127.0.0.2", "lo4b"),
    ...both(false, G4, "0.0.0.0", "any4"),
    ...both(true, G6, "::1", "lo6"),
    ...both(true, G6, "::", "any6"),
    ...both(true, G6, "::ffff:127.0.0.1", "mapped-lo"),
    ...both(false, G4, "224.0.0.1", "mcast4"),
    ...both(true, G6, "ff02::1", "mcast6"),
    ...both(false, G4, "255.255.255.255", "bcast"),
    ...both(false, G4, "198.51.100.255", "dbcast"),
    ...both(false, G4, "203.0.113.10", "dport0", 40000, 0),
    ...both(false, G4, "203.0.113.10", "sport0", 0, PORT),
    { proto: "icmp", v6: false, src: G4, dst: "127.0.0.1", sport: 0x4242, dport: 0 },
    { proto: "icmp", v6: true, src: G6, dst: "::1", sport: 0x4243, dport: 0 },
  ];
}

/** Frames towards the mapped gateway that must be refused all the same. */
function refusedMapped(): RawFrame[] {
  return [
    /* the gateway's IPv4 address, IPv4-mapped in an IPv6 frame */
    ...both(true, G6, `::ffff:${GW4}`, "mapped-gw"),
    /* sources no guest owns */
    ...both(false, "127.0.0.1", GW4, "src-lo4"),
    ...both(false, "0.0.0.0", GW4, "src-any4"),
    ...both(false, "224.0.0.1", GW4, "src-mcast4"),
    ...both(true, "::1", GW6, "src-lo6"),
    /* port 0 on either side */
    ...both(false, G4, GW4, "gw-dport0", 40000, 0),
    ...both(false, G4, GW4, "gw-sport0", 0, PORT),
    { proto: "icmp", v6: false, src: "127.0.0.1", dst: GW4, sport: 0x4244, dport: 0 },
  ];
}

/** The control: frames to the mapped gateway that reach the recording server. */
function allowedMapped(): RawFrame[] {
  return [
    ...both(false, G4, GW4, "control4", 40001),
    ...both(true, G6, GW6, "control6", 40002),
    { proto: "icmp", v6: false, src: G4, dst: GW4, sport: 0x4245, dport: 0 },
  ];
}

/** Whether a frame is IPv6 with an IPv4-mapped destination. */
function mapped(f: RawFrame): boolean {
  return f.v6 && f.dst.startsWith("::ffff:");
}

/**
 * Upstream pasta's run of a scenario: as root it cannot give a command it
 * spawns the capabilities to write raw frames, so it attaches to a
 * namespace made with `ip netns add`, where the script then runs.
 * @returns the script's result, and whether pasta still ran after it
 */
async function refScenario(
  t: Topology,
  args: string[],
  script: string,
): Promise<{ r: RunResult; survived: boolean }> {
  const ns = `${t.host}-g`;
  await run(["ip", "netns", "add", ns]);
  const p = await background([
    ...["ip", "netns", "exec", t.host, ...TRANSLATOR, ...args, "--config-net"],
    ...["--netns", `/run/netns/${ns}`],
  ], { timeoutMs: 60000 });
  try {
    for (let i = 0; i < 100; i++) {
      const a = await run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"]);
      if (a.stdout.includes("inet ")) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const r = await run(["ip", "netns", "exec", ns, "sh", "-c", script], { timeoutMs: 30000 });
    let survived = true;
    const st = await Promise.race([
      p.child.status.then(() => "exited"),
      new Promise<string>((res) => setTimeout(() => res("running"), 200)),
    ]);
    if (st === "exited") survived = false;
    return { r, survived };
  } finally {
    await p.stop();
    await run(["ip", "netns", "del", ns]);
  }
}

/** The frames a scenario sends: without IPv4-mapped ones for upstream pasta. */
function forTranslator(frames: RawFrame[]): RawFrame[] {
  return REF === undefined ? frames : frames.filter((f) => !mapped(f));
}

function count(frames: RawFrame[], proto: RawFrame["proto"]): number {
  return frames.filter((f) => f.proto === proto).length;
}

/** The `refused N` counter of orzo's -d exit line that starts with `prefix`. */
function refusedStat(stderr: string, prefix: string): number {
  const line = stderr.split("\n").find((l) => l.includes(prefix) && l.includes("refused"));
  const m = line?.match(/refused (\d+)/);
  assert.ok(m, `no "${prefix}... refused" line in:\n${stderr}`);
  return Number(m[1]);
}

/**
 * Runs orzo with `args`; the guest writes `frames`, waits, then sends 1 MB to
 * an echo server on the remote through orzo and compares what comes back. Returns orzo's result and
 * the recording server's lines.
 */
async function scenario(args: string[], frames: RawFrame[]) {
  const t = await Topology.create();
  const dir = await Deno.makeTempDir({ prefix: "orzo-iso-" });
  const log = `${dir}/recorded.txt`;
  try {
    const ping = await t.hostSysctl("net.ipv4.ping_group_range=0 2147483647");
    assert.equal(ping.code, 0, ping.stderr);
    const rec = await background(denoIn(t.host, RECORD_SERVER, [String(PORT), log, "90"]), {
      ready: "ready",
      timeoutMs: 100000,
    });
    const echo = await background([
      "ip",
      "netns",
      "exec",
      t.remote,
      "sh",
      "-c",
      `exec ${PEER} serve-echo 203.0.113.10 9003`,
    ], { ready: "listening", timeoutMs: 100000 });
    try {
      const hex = frames.map((f) => rawFrameHex(f, "${M}")).join(" ");
      const script = `M=$(tr -d : < /sys/class/net/eth0/address) && ${INJECT_ETH0} ${hex} && ` +
        `sleep 1.5 && ${PEER} client-many 203.0.113.10 9003 1 1000000`;
      let r: RunResult;
      let survived = true;
      if (REF === undefined) {
        r = await t.inHost([...TRANSLATOR, ...args, "--config-net", "--", "sh", "-c", script], {
          timeoutMs: 60000,
        });
      } else {
        ({ r, survived } = await refScenario(t, args, script));
      }
      /* the recording server may still be writing a late arrival */
      await new Promise((res) => setTimeout(res, 300));
      const recorded = (await Deno.readTextFile(log)).split("\n").filter((l) => l !== "");
      return { r, recorded, survived };
    } finally {
      await echo.stop();
      await rec.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await t.destroy();
  }
}

/** Checks what every scenario shares: frames sent, orzo alive, counters. */
function checkCommon(
  r: { code: number; stdout: string; stderr: string },
  sent: RawFrame[],
  refused: RawFrame[],
): void {
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(Number(lines[0]), sent.length, `inject.ts sent every frame: ${r.stdout}${r.stderr}`);
  assert.equal(lines[1], "ok 1", "a byte-checked echo through orzo afterwards");
  if (REF !== undefined) return;
  assert.equal(refusedStat(r.stderr, "TCP: opened"), count(refused, "tcp"), "TCP refusals");
  assert.equal(refusedStat(r.stderr, "udp: flows"), count(refused, "udp"), "UDP refusals");
  assert.equal(refusedStat(r.stderr, "icmp: echo"), count(refused, "icmp"), "ICMP refusals");
}

Deno.test({
  name: "isolation: with --no-map-gw, no raw frame from the guest reaches the host's loopback",
  ignore: !isRoot,
  async fn() {
    const frames = forTranslator(refusedAlways());
    const { r, recorded } = await scenario(["--no-map-gw"], frames);
    checkCommon(r, frames, frames);
    assert.deepEqual(recorded, [], "nothing reached the loopback-only server");
    if (REF !== undefined) return;
    assert.match(r.stderr, /refused a flow from the guest \(loopback destination\)/);
    assert.match(
      r.stderr,
      /\(IPv4-mapped address in an IPv6 packet\): \[2001:db8:1::2\]:40000 -> \[::ffff:127\.0\.0\.1\]:47001/,
    );
  },
});

Deno.test({
  name: "isolation: with the gateway mapping, only the gateway itself reaches the host's loopback",
  ignore: !isRoot,
  async fn() {
    const refused = forTranslator([...refusedAlways(), ...refusedMapped()]);
    const allowed = allowedMapped();
    const frames = [...refused, ...allowed];
    const { r, recorded } = await scenario([], frames);
    checkCommon(r, frames, refused);
    /* the control frames arrive, each once, and nothing else does */
    const tcp = recorded.filter((l) => l.startsWith("tcp ")).map((l) => l.split(" ")[1]).sort();
    const udp = recorded.filter((l) => l.startsWith("udp ")).map((l) => l.split(" ").pop()).sort();
    assert.deepEqual(tcp, ["127.0.0.1", "::1"], recorded.join("\n"));
    assert.deepEqual(udp, ["control4", "control6"], recorded.join("\n"));
    assert.equal(recorded.length, 4, recorded.join("\n"));
    if (REF === undefined) {
      assert.match(r.stderr, /icmp: echo requests 1,/, "the control echo request was sent");
    }
  },
});

Deno.test({
  name: "isolation: a SYN to IPv4-mapped loopback in an IPv6 frame is refused and orzo lives on",
  ignore: !isRoot,
  async fn() {
    const frames = both(true, G6, "::ffff:127.0.0.1", "mapped-lo");
    const { r, recorded, survived } = await scenario(["--no-map-gw"], frames);
    assert.deepEqual(recorded, [], "nothing reached the loopback-only server");
    if (REF !== undefined) {
      /* the expected difference: upstream pasta dies on its assertion */
      assert.equal(survived, false, r.stdout + r.stderr);
      return;
    }
    checkCommon(r, frames, frames);
  },
});
