/**
 * threads.ts - keeping V8's background threads out of the loop's way.
 *
 * V8 compiles hot functions (Maglev, TurboFan) and does part of its garbage
 * collection on worker threads of its platform ("V8 DefaultWorke", one per
 * CPU, started with Deno). Under the same policy and nice value as the
 * loop's thread, a compile job that is running when the loop's thread is
 * woken keeps the CPU: the scheduler does not let the woken thread preempt
 * it. Measured on 2 CPUs (`perf` scheduler events over the benchmark's
 * connection-rate cell, 5000 connections in 1.5 s): orzo's V8 workers ran
 * 61 ms in 213 bursts of up to 4.2 ms, and most of the loop thread's 80
 * wake-ups that waited more than 200 µs for a CPU waited behind one of
 * them: a 99th percentile of 1.0 ms from wake-up to running, against 71 µs
 * for pasta.
 *
 * So they run under SCHED_IDLE: any other thread that wakes preempts them,
 * and the scheduler counts a CPU that runs only them as idle when it
 * places a woken thread. The cell's p99 connection time went from 633-755
 * µs (five runs) to 505-628 µs at nice 19 (the loop thread's p99 from
 * wake-up to running: 0.11 ms) and 399-521 µs under SCHED_IDLE (four runs
 * each). Where SCHED_IDLE is refused they get nice 19. Their work is never
 * urgent: code runs unoptimised meanwhile, and a collection that waits on
 * them is joined by the thread that waits. Throughput under full load did
 * not change (4 streams through the tap, both CPUs busy).
 *
 * @module
 */

import { libc } from "./libc.ts";
import { addressOf, readFileText } from "./mem.ts";
import { procDirNumbers } from "./proc_dir.ts";

/** sched_setscheduler(2) on x86_64. */
const SYS_SCHED_SETSCHEDULER = 144n;
/** The scheduling policy for threads that run only when nothing else wants the CPU. */
export const SCHED_IDLE = 5;
/** setpriority(2) `which`: one thread, by its ID. */
const PRIO_PROCESS = 0;
/** The nice value given to V8's workers where SCHED_IDLE is refused: the lowest priority. */
export const V8_WORKER_NICE = 19;
/** Name (comm, cut to 15 bytes) of V8's platform worker threads. */
export const V8_WORKER_COMM = "V8 DefaultWorke";

/** struct sched_param { int sched_priority; }: 0 for SCHED_IDLE. */
const schedParam = new Uint8Array(4);

/**
 * Moves V8's platform worker threads to SCHED_IDLE (else to nice 19).
 * Lowering one's own priority needs no privilege. Set-up only: allocates.
 * @returns the number of threads changed
 */
export function v8WorkersDeprioritise(): number {
  const param = addressOf(schedParam);
  let n = 0;
  for (const tid of procDirNumbers("/proc/self/task")) {
    let comm: string;
    try {
      comm = readFileText(`/proc/self/task/${tid}/comm`).trim();
    } catch {
      continue; /* gone */
    }
    if (comm !== V8_WORKER_COMM) continue;
    const r = libc.symbols.syscall4(SYS_SCHED_SETSCHEDULER, BigInt(tid), BigInt(SCHED_IDLE), param);
    if (r === 0n || libc.symbols.setpriority(PRIO_PROCESS, tid, V8_WORKER_NICE) === 0) n++;
  }
  return n;
}
