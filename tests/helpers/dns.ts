/**
 * dns.ts - the DNS side of the hermetic world: a resolver (dns_server.ts) in
 * the remote namespace, and the host namespace's resolv.conf pointing at it
 * (/etc/netns/<host namespace>/resolv.conf, which `ip netns exec` mounts over
 * /etc/resolv.conf for everything started in the host namespace).
 *
 * @module
 */

import { type Background, background, denoIn, type Topology } from "./topology.ts";

const DNS_SERVER = new URL("./dns_server.ts", import.meta.url).pathname;

/**
 * Writes the host namespace's resolv.conf.
 * @param t the topology
 * @param text the file's contents
 * @returns a function removing it
 */
export async function hostResolvConf(t: Topology, text: string): Promise<() => Promise<void>> {
  const dir = `/etc/netns/${t.host}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/resolv.conf`, text);
  return async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
}

/**
 * Starts the DNS server in the remote namespace (it answers every name in
 * DNS_ZONE, see dns_server.ts).
 * @param t the topology
 * @param addrs comma-separated addresses to listen on
 * @param ns the namespace to run it in (default: the remote one)
 * @returns the server; call stop() in a finally block
 */
export function dnsServer(
  t: Topology,
  addrs = "203.0.113.10,2001:db8:2::10",
  ns = t.remote,
): Promise<Background> {
  return background(denoIn(ns, DNS_SERVER, [addrs, "53", "90"]), {
    ready: "ready",
    timeoutMs: 100000,
  });
}
