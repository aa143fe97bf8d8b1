/**
 * End-to-end test of startPasst() (mod.ts): passt mode started in this very
 * process, its host side in the hermetic topology's host namespace. The test
 * plays the virtual machine on the network's UNIX socket (qemu's stream
 * framing, tests/helpers/stream_guest.ts): it asks for the gateway over ARP,
 * then serves a TCP echo by hand (tcp_frames.ts) behind a -t forward added
 * at run time, to which a client in the remote namespace connects; the
 * counters must match the frames that went each way, and close() must give
 * the socket's path back.
 */

import assert from "node:assert/strict";
import { startPasst } from "../../mod.ts";
import { background, denoIn, run, TCP_PEER, Topology } from "../helpers/topology.ts";
import { arpRequest, GUEST_MAC, StreamGuest } from "../helpers/stream_guest.ts";
import { ACK, FIN, flagNames, parseTcp, PSH, segment, SYN } from "../helpers/tcp_frames.ts";

const isRoot = Deno.uid() === 0;
const PORT = 9501;
/** The guest's address in passt mode: the host's own (topology.ts). */
const GUEST_IP = "198.51.100.2";
/** orzo's MAC address as the guest sees it. */
const ORZO_MAC = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];

/**
 * Serves one TCP connection as an echo, by hand: SYN answered, data echoed,
 * FIN answered with FIN; until the guest's FIN is acknowledged.
 * @returns bytes echoed
 */
async function echoOne(g: StreamGuest, deadline: number): Promise<number> {
  let peer = { addr: "", port: 0 };
  let rcvNxt = 0;
  let sndNxt = 5000;
  let echoed = 0;
  let finSent = false;
  const reply = (flags: number, payload: Uint8Array = new Uint8Array(0)) =>
    g.send(segment({
      v6: false,
      src: GUEST_IP,
      dst: peer.addr,
      sport: PORT,
      dport: peer.port,
      seq: sndNxt,
      ack: rcvNxt,
      flags,
      win: 65535,
      opts: flags & SYN ? { mss: 1460 } : {},
      payload,
    }));
  while (performance.now() < deadline) {
    const f = await g.recv(deadline - performance.now());
    if (f === null) break;
    if (new DataView(f.buffer).getUint16(12) !== 0x0800) continue;
    const s = parseTcp(f, 0);
    assert.equal(s.dst, GUEST_IP);
    assert.equal(s.dport, PORT);
    if (s.flags & SYN) {
      assert.equal(flagNames(s.flags), "SYN");
      peer = { addr: s.src, port: s.sport };
      rcvNxt = (s.seq + 1) >>> 0;
      await reply(SYN | ACK);
      sndNxt++;
      continue;
    }
    if (s.payload.length > 0 && s.seq === rcvNxt) {
      rcvNxt = (rcvNxt + s.payload.length) >>> 0;
      await reply(ACK | PSH, s.payload);
      sndNxt += s.payload.length;
      echoed += s.payload.length;
    }
    if (s.flags & FIN && !finSent) {
      rcvNxt = (rcvNxt + 1) >>> 0;
      await reply(FIN | ACK);
      sndNxt++;
      finSent = true;
      continue;
    }
    if (finSent && s.ack === sndNxt) return echoed;
  }
  throw new Error(`echo unfinished: ${echoed} bytes echoed, FIN sent ${finSent}`);
}

Deno.test({
  name:
    "lib: startPasst: a guest on its socket, ARP, a TCP echo behind a forward added at run time",
  ignore: !isRoot,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await Topology.create();
    const path = `/tmp/orzo-lib-passt-${Deno.pid}.socket`;
    const net = await startPasst(["-q", "-s", path], { hostNetns: `/run/netns/${t.host}` });
    let g: StreamGuest | null = null;
    try {
      assert.equal(net.socketPath, path);
      assert.ok(Deno.statSync(path).isSocket);
      g = await StreamGuest.connect(path);

      /* ARP: the gateway answers with orzo's MAC */
      await g.send(arpRequest(GUEST_MAC, [198, 51, 100, 2], [198, 51, 100, 1]));
      const arp = await g.recv();
      assert.ok(arp !== null, "an ARP reply came");
      const av = new DataView(arp.buffer);
      assert.deepEqual([...arp.subarray(0, 6)], GUEST_MAC, "to the guest");
      assert.equal(av.getUint16(12), 0x0806);
      assert.equal(av.getUint16(20), 2, "an ARP reply");
      assert.deepEqual([...arp.subarray(22, 28)], ORZO_MAC);
      assert.deepEqual([...arp.subarray(28, 32)], [198, 51, 100, 1]);

      /* nothing listens before the forward is added */
      const client = () =>
        run(
          denoIn(t.remote, TCP_PEER, ["client-many", GUEST_IP, `${PORT}`, "1", "3000"], {
            env: { PEER_DEADLINE_MS: "20000" },
          }),
        );
      const early = await client();
      assert.notEqual(early.code, 0, "refused before the forward");

      await net.addForward("tcp", `${PORT}`);
      assert.deepEqual((await net.listForwards()).tcp, [`${PORT}`]);
      const [r, echoed] = await Promise.all([client(), echoOne(g, performance.now() + 20000)]);
      assert.equal(r.stdout.trim(), "ok 1", r.stderr);
      assert.equal(echoed, 3000);

      /* the counters: every frame each way, one connection opened and closed */
      let s = await net.stats();
      for (let i = 0; i < 50 && s.tcp?.closed !== 1; i++) {
        await new Promise((res) => setTimeout(res, 20));
        s = await net.stats();
      }
      assert.equal(s.stream?.clients, 1, JSON.stringify(s.stream));
      assert.equal(s.stream?.framesIn, g.sent, JSON.stringify(s.stream));
      assert.equal(s.tap.framesIn, g.sent, JSON.stringify(s.tap));
      assert.equal(s.tap.framesOut, g.received, JSON.stringify(s.tap));
      assert.equal(s.tap.malformed, 0);
      assert.equal(s.tcp?.opened, 1, JSON.stringify(s.tcp));
      assert.equal(s.tcp?.closed, 1, JSON.stringify(s.tcp));
      assert.equal(s.tcp?.rstToTap, 0, JSON.stringify(s.tcp));
      assert.equal(s.handlerFailures, 0);

      /* removed: refused again */
      assert.equal(await net.removeForward("tcp", `${PORT}`), 1);
      const late = await client();
      assert.notEqual(late.code, 0, "refused once the forward is removed");
      g.close();
      g = null;
      assert.equal(await net.close(), 0);
      /* close() gave the path back: gone, and another network can take it */
      assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
      const again = await startPasst(["-q", "-s", path], { hostNetns: `/run/netns/${t.host}` });
      assert.equal(again.socketPath, path);
      assert.equal(await again.close(), 0);
      assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);

      /* one that cannot start (its -t port is taken) says why, and leaves no socket */
      const taken = await background(
        denoIn(t.host, TCP_PEER, ["serve-echo", "0.0.0.0", `${PORT}`]),
        {
          ready: "listening",
        },
      );
      try {
        await assert.rejects(
          startPasst(["-q", "-s", path, "-t", `${PORT}`], { hostNetns: `/run/netns/${t.host}` }),
          /EADDRINUSE/,
        );
        assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
      } finally {
        await taken.stop();
      }
    } finally {
      g?.close();
      await net.close();
      await t.destroy();
      await Deno.remove(path).catch(() => {});
    }
  },
});
