/** Tests of the capabilities kept after isolation (isolate.ts keptCaps). */

import assert from "node:assert/strict";
import { confParse } from "../conf/conf.ts";
import { CAP_KILL, CAP_NET_BIND_SERVICE, keptCaps } from "./isolate.ts";

const BIND = 1 << CAP_NET_BIND_SERVICE;

Deno.test("keptCaps: CAP_NET_BIND_SERVICE with low ports that bind later, or a control socket", () => {
  const caps = (args: string[], switching = false, spawned = false) =>
    keptCaps(confParse(args, { argv0Pasta: true }), switching, spawned);
  assert.equal(caps(["-t", "8080", "-u", "none", "-T", "none", "-U", "none"]), 0);
  /* -t 80 is bound at start-up, while privileged; a UDP flow binds later */
  assert.equal(caps(["-t", "80", "-u", "none", "-T", "none", "-U", "none"]), 0);
  assert.equal(caps(["-t", "none", "-u", "53", "-T", "none", "-U", "none"]), BIND);
  /* pasta's default `auto` covers low ports */
  assert.equal(caps([]), BIND);
  /* a forward added through -c may be any port */
  assert.equal(
    caps(["-c", "/run/o.ctl", "-t", "none", "-u", "none", "-T", "none", "-U", "none"]),
    BIND,
  );
  assert.equal(
    caps(["-c", "/run/o.ctl", "--no-tcp", "--no-udp", "-T", "none", "-U", "none"]),
    0,
  );
  assert.equal(
    caps(["-t", "none", "-u", "none", "-T", "none", "-U", "none"], true, true),
    1 << CAP_KILL,
  );
});
