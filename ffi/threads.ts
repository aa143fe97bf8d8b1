/**
 * threads.ts - keeping V8's background threads out of the loop's way.
 *
 * V8 compiles hot functions (Maglev, TurboFan) and does part of its garbage
 * collection on worker threads of its platform ("V8 DefaultWorke", one per
 * CPU, started with Deno). At the same nice value as the loop's thread,
 * a compile job that is running when the loop's thread is woken keeps the
 * CPU: the scheduler does not let the woken thread preempt it. Measured on
 * 2 CPUs (`perf sched` events over the benchmark's connection-rate cell,
 * 5000 connections in 1.5 s): orzo's V8 workers ran 61 ms in 213 bursts of
 * up to 4.2 ms, and most of the loop thread's 80 wake-ups that waited more
 * than 200 µs for a CPU waited behind one of them: a 99th percentile of
 * 1.0 ms from wake-up to running, against 71 µs for pasta. With the workers
 * at the lowest priority a wake-up preempts them.
 *
 * Their work is never urgent: code runs unoptimised, and a collection that
 * waits on them is joined by the thread that waits.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { readFileText } from "./mem.ts";
import { procDirNumbers } from "./proc_dir.ts";

/** setpriority(2) `which`: one thread, by its ID. */
const PRIO_PROCESS = 0;
/** The nice value given to V8's workers: the lowest priority. */
export const V8_WORKER_NICE = 19;
/** Name (comm, cut to 15 bytes) of V8's platform worker threads. */
export const V8_WORKER_COMM = "V8 DefaultWorke";

/**
 * Gives V8's platform worker threads the lowest priority. Lowering one's
 * own priority needs no privilege.
 * @param nice the nice value to set
 * @returns the number of threads changed
 */
export function v8WorkersDeprioritise(nice = V8_WORKER_NICE): number {
  let n = 0;
  for (const tid of procDirNumbers("/proc/self/task")) {
    let comm: string;
    try {
      comm = readFileText(`/proc/self/task/${tid}/comm`).trim();
    } catch {
      continue; /* gone */
    }
    if (comm !== V8_WORKER_COMM) continue;
    if (libc.symbols.setpriority(PRIO_PROCESS, tid, nice) === 0) n++;
  }
  return n;
}
