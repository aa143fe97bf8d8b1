/**
 * launch.ts - starts the tap fuzzer (fuzz_main.ts) in a network namespace
 * of its own, with only its loopback up (`unshare -rn`: a user namespace
 * maps the caller to root there, so no privilege is needed), and ping
 * sockets allowed for the namespace's root group.
 *
 * @module
 */

import { DENO, REPO } from "../helpers/topology.ts";

/** Result of a fuzzer run. */
export interface FuzzResult {
  /** exit status: 0 when every check passed */
  code: number;
  /** what it printed (the seed first) */
  stdout: string;
  /** its complaints */
  stderr: string;
}

/**
 * Runs the fuzzer to completion.
 * @param frames number of frames
 * @param seed the PRNG's seed (null: a random one, printed by the fuzzer)
 * @param timeoutMs the run is killed after this long
 * @returns its exit status and output
 */
export async function fuzzRun(
  frames: number,
  seed: number | null,
  timeoutMs: number,
): Promise<FuzzResult> {
  const env: Record<string, string> = { FUZZ_FRAMES: String(frames), DENO_NO_UPDATE_CHECK: "1" };
  if (seed !== null) env.FUZZ_SEED = String(seed);
  const script = `ip link set lo up && echo '0 0' > /proc/sys/net/ipv4/ping_group_range && ` +
    `exec "${DENO}" run --allow-all "${REPO}/tests/fuzz/fuzz_main.ts"`;
  const child = new Deno.Command("unshare", {
    args: ["-rn", "sh", "-c", script],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
