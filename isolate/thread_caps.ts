/**
 * thread_caps.ts - dropping capabilities from one thread.
 *
 * Capability sets and the bounding set belong to a thread in Linux, not to
 * the process: capset(2) and PR_CAPBSET_DROP act on the calling thread only.
 * So each thread that orzo controls (the main thread and its namespace
 * Worker) runs {@linkcode threadCapsDrop} itself. The function closes over
 * nothing and is handed the caller's libc table: the Worker, which
 * --allow-ffi alone lets start only from source text, is handed its source
 * (ns/worker_main.ts) and passes its own table.
 *
 * @module
 */

/** The libc symbols {@linkcode threadCapsDrop} calls, from the calling thread's table. */
export interface CapsSymbols {
  /** int *__errno_location(void) */
  // deno-lint-ignore camelcase
  __errno_location(): Deno.PointerValue;
  /** int prctl(int option, unsigned long a2, a3, a4, a5) */
  prctl(option: number, a2: bigint, a3: bigint, a4: bigint, a5: bigint): number;
  /** int capget(cap_user_header_t hdr, cap_user_data_t data) */
  capget(hdr: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): number;
  /** int capset(cap_user_header_t hdr, const cap_user_data_t data) */
  capset(hdr: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): number;
}

/**
 * Drops capabilities from the calling thread.
 * @param keep capabilities to keep in the effective and permitted sets, as a
 *   bit mask of capability numbers below 32 (1 << CAP_NET_BIND_SERVICE, ...)
 * @param clamp whether to empty the bounding set first (needs CAP_SETPCAP)
 * @param sets whether to reduce the effective, permitted and inheritable sets
 * @param sym the calling thread's libc symbols
 * @returns "" on success, else "what: errno N"
 */
export function threadCapsDrop(
  keep: number,
  clamp: boolean,
  sets: boolean,
  sym: CapsSymbols,
): string {
  const err = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(sym.__errno_location()!, 4));
  if (clamp) {
    /* PR_CAPBSET_DROP; EINVAL: a number the kernel has no capability for */
    for (let cap = 0; cap < 64; cap++) {
      if (sym.prctl(24, BigInt(cap), 0n, 0n, 0n) < 0 && err[0] !== 22) {
        return `PR_CAPBSET_DROP ${cap}: errno ${err[0]}`;
      }
    }
  }
  if (sets) {
    /* _LINUX_CAPABILITY_VERSION_3, this thread; two {effective, permitted, inheritable} */
    const hdr = new Uint32Array([0x20080522, 0]);
    const data = new Uint32Array(6);
    const h = new Uint8Array(hdr.buffer);
    const d = new Uint8Array(data.buffer);
    if (sym.capget(h, d) < 0) return `capget: errno ${err[0]}`;
    data[0] = data[1]! & keep;
    data[1] = data[0];
    data[2] = 0;
    data[3] = data[4] = data[5] = 0;
    if (sym.capset(h, d) < 0) return `capset: errno ${err[0]}`;
  }
  return "";
}
