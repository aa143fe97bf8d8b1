/**
 * v8_flags.ts - the V8 options orzo runs with, for every way of starting it
 * that lives in TypeScript (`deno task compile`, the benchmarks). The `orzo`
 * launcher (a shell script) passes the same option; keep the two in step.
 *
 * `--no-lazy` compiles every function when its module loads instead of on
 * its first call. orzo's rare paths (the first ping of a flow, the first
 * connection through a forward, DHCP) otherwise pay the parser and the
 * bytecode compiler when the packet is there: measured on a 2-CPU machine,
 * the guest's first ping went from 1.2-6.9 ms to 0.4-0.6 ms, while start-up
 * (ready in 0.4-0.6 s, 160-190 ms of CPU) and RSS (about 100 MiB) did not
 * change beyond their noise. `--always-sparkplug` gives every function
 * baseline machine code at its first call instead of after some hundreds of
 * interpreted runs: the steady ping RTT (one every 50 ms, a path that runs
 * too rarely for V8 to tier it up) fell a further 5-10% (medians 210-228 µs
 * against 234-250 µs, four fresh runs each, alternating). TCP throughput and
 * CPU per Gbit/s did not move (4 streams guest→host: 3.0-3.1 % of a core per
 * Gbit/s with and without). `--invocation-count-for-feedback-allocation=1`
 * gives a function its inline caches from its first call instead of its
 * eighth: the benchmark's ping row (20 pings, one every 50 ms, from start)
 * went from medians of 238-283 µs to 203-244 µs (five fresh runs each,
 * alternating); idle RSS, TCP throughput, request/response and connection
 * rates did not move.
 *
 * @module
 */

/** `deno run` / `deno compile` option carrying orzo's V8 flags. */
export const ORZO_V8_FLAGS =
  "--v8-flags=--no-lazy,--always-sparkplug,--invocation-count-for-feedback-allocation=1";
