/**
 * thread_caps.ts - dropping capabilities from one thread.
 *
 * Capability sets and the bounding set belong to a thread in Linux, not to
 * the process: capset(2) and PR_CAPBSET_DROP act on the calling thread only.
 * So each thread that orzo controls (the main thread and its Workers) runs
 * {@linkcode threadCapsDrop} itself. The function closes over nothing and
 * opens its own libc: the Workers, which --allow-ffi alone lets start only
 * from source text, are handed its source (ns.ts, ns_sync.ts).
 *
 * @module
 */

/**
 * Drops capabilities from the calling thread.
 * @param keep capabilities to keep in the effective and permitted sets, as a
 *   bit mask of capability numbers below 32 (1 << CAP_NET_BIND_SERVICE, ...)
 * @param clamp whether to empty the bounding set first (needs CAP_SETPCAP)
 * @param sets whether to reduce the effective, permitted and inheritable sets
 * @returns "" on success, else "what: errno N"
 */
export function threadCapsDrop(keep: number, clamp: boolean, sets: boolean): string {
  const lib = Deno.dlopen(
    "libc.so.6",
    {
      __errno_location: { parameters: [], result: "pointer" },
      prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      capget: { parameters: ["buffer", "buffer"], result: "i32" },
      capset: { parameters: ["buffer", "buffer"], result: "i32" },
    } as const,
  );
  try {
    const err = new Int32Array(
      Deno.UnsafePointerView.getArrayBuffer(lib.symbols.__errno_location()!, 4),
    );
    if (clamp) {
      /* PR_CAPBSET_DROP; EINVAL: a number the kernel has no capability for */
      for (let cap = 0; cap < 64; cap++) {
        if (lib.symbols.prctl(24, BigInt(cap), 0n, 0n, 0n) < 0 && err[0] !== 22) {
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
      if (lib.symbols.capget(h, d) < 0) return `capget: errno ${err[0]}`;
      data[0] = data[1]! & keep;
      data[1] = data[0];
      data[2] = 0;
      data[3] = data[4] = data[5] = 0;
      if (lib.symbols.capset(h, d) < 0) return `capset: errno ${err[0]}`;
    }
    return "";
  } finally {
    lib.close();
  }
}
