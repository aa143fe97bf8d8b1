/**
 * worker_main.ts - the code of the namespace thread.
 *
 * A network namespace is a property of a thread, and the main thread must
 * stay in the host's namespace (it may not be allowed back: FFI-NOTES.md §5).
 * So one Worker enters or creates the guest's namespace, opens there what
 * must be opened there (the tap, a netlink socket, the namespace fd, sysctl
 * files, sockets for the splice paths and `auto`) and spawns the user's
 * command from there so that it inherits the namespace. File descriptors are
 * process-wide: the main thread uses them.
 *
 * With `--allow-ffi` alone a Worker cannot load a module from a file, so this
 * function must not close over anything: it is started from its own source
 * text ({@linkcode nsWorkerStart}) and declares its own small libc table.
 *
 * The thread answers in two ways, one at a time:
 * - messages (set-up, through its JS event loop): requests `{ id, op, ... }`,
 *   replies `{ id, ok: true, ... }` or `{ id, ok: false, error: "what: ERRNO" }`;
 * - the synchronous channel of ns_sync.ts (while the main thread may be
 *   blocked in its epoll loop, which never lets a reply message in): the
 *   message `{ op: "sync", sab }` makes the thread serve the shared buffer
 *   with a blocking `Atomics.wait` until asked to yield (back to messages)
 *   or to quit. ns_sync.ts describes the buffer and switches the modes.
 *
 * A thread blocked in `Atomics.wait` does not notice `Worker.terminate()`:
 * the channel asks it to quit first (NsSync.close).
 *
 * @module
 */

import { type CapsSymbols, threadCapsDrop } from "../isolate/thread_caps.ts";

/**
 * Starts the namespace Worker (in the current namespace until it is asked
 * to unshare or setns).
 * @returns the Worker
 */
export function nsWorkerStart(): Worker {
  const src = `(${nsWorkerMain.toString()})(${threadCapsDrop.toString()});`;
  const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
  const worker = new Worker(url, { type: "module" });
  URL.revokeObjectURL(url);
  return worker;
}

/**
 * Entry point of the namespace Worker; runs in the Worker's global scope.
 * @param capsDrop isolate/thread_caps.ts's threadCapsDrop, handed over as source
 *   text like this function
 */
export function nsWorkerMain(
  capsDrop: (keep: number, clamp: boolean, sets: boolean, sym: CapsSymbols) => string,
): void {
  const lib = Deno.dlopen(
    "libc.so.6",
    {
      __errno_location: { parameters: [], result: "pointer" },
      unshare: { parameters: ["i32"], result: "i32" },
      gettid: { parameters: [], result: "i32" },
      setns: { parameters: ["i32", "i32"], result: "i32" },
      open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
      ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
      ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      posix_spawnp: {
        parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
        result: "i32",
      },
      posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
      posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
      posix_spawn_file_actions_addclosefrom_np: { parameters: ["buffer", "i32"], result: "i32" },
      posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
      posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
      posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
      posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
      posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
      prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      capget: { parameters: ["buffer", "buffer"], result: "i32" },
      capset: { parameters: ["buffer", "buffer"], result: "i32" },
    } as const,
  );
  const sym = lib.symbols;
  const errnoSlot = new Int32Array(
    Deno.UnsafePointerView.getArrayBuffer(sym.__errno_location()!, 4),
  );
  const ERRNO_NAMES: Record<number, string> = {
    1: "EPERM",
    2: "ENOENT",
    9: "EBADF",
    13: "EACCES",
    16: "EBUSY",
    17: "EEXIST",
    19: "ENODEV",
    22: "EINVAL",
    23: "ENFILE",
    24: "EMFILE",
    25: "ENOTTY",
    38: "ENOSYS",
    95: "EOPNOTSUPP",
  };
  const CLONE_NEWNET = 0x40000000;
  const O_RDONLY = 0;
  const O_WRONLY = 1;
  const O_RDWR = 2;
  const O_NONBLOCK = 0o4000;
  const O_CLOEXEC = 0o2000000;
  const enc = new TextEncoder();

  class Fail extends Error {}
  function fail(what: string): never {
    const e = errnoSlot[0]!;
    throw new Fail(`${what}: ${ERRNO_NAMES[e] ?? "E" + e}`);
  }
  function cstr(s: string): Uint8Array<ArrayBuffer> {
    const b = enc.encode(s);
    const out = new Uint8Array(b.length + 1);
    out.set(b);
    return out;
  }
  function openNsFd(): number {
    const fd = sym.open(cstr("/proc/thread-self/ns/net"), O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) fail("open /proc/thread-self/ns/net");
    return fd;
  }

  /** A NULL-terminated char *[]; `keep` holds the strings alive. */
  function cArray(list: string[]): { ptrs: Uint8Array<ArrayBuffer>; keep: Uint8Array[] } {
    const keep = list.map(cstr);
    const ptrs = new BigUint64Array(keep.length + 1);
    keep.forEach((s, i) => {
      ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s)));
    });
    return { ptrs: new Uint8Array(ptrs.buffer), keep };
  }

  /** Spawns argv with the environment env (NAME=value strings). */
  function spawn(argv: string[], env: string[]): number {
    const args = cArray(argv);
    const envp = cArray(env);
    const attr = new Uint8Array(336);
    const sigs = new Uint8Array(128);
    sym.posix_spawnattr_init(attr);
    sym.posix_spawnattr_setsigmask(attr, sigs);
    sigs.fill(0xff);
    sym.posix_spawnattr_setsigdefault(attr, sigs);
    /* POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK */
    sym.posix_spawnattr_setflags(attr, 0x04 | 0x08);
    /* the command gets standard streams only, as pasta's */
    const fa = new Uint8Array(80);
    sym.posix_spawn_file_actions_init(fa);
    sym.posix_spawn_file_actions_addclosefrom_np(fa, 3);
    const pid = new Int32Array(1);
    const rc = sym.posix_spawnp(
      new Uint8Array(pid.buffer),
      args.keep[0] as Uint8Array<ArrayBuffer>,
      fa,
      attr,
      args.ptrs,
      envp.ptrs,
    );
    sym.posix_spawnattr_destroy(attr);
    sym.posix_spawn_file_actions_destroy(fa);
    if (rc !== 0) {
      errnoSlot[0] = rc;
      fail(`Cannot start "${argv[0]}"`);
    }
    return pid[0]!;
  }

  type Req = {
    id: number;
    op: string;
    path?: string;
    name?: string;
    vnetHdr?: boolean;
    value?: string;
    argv?: string[];
    env?: string[];
    fd?: number;
    sab?: SharedArrayBuffer;
  };

  function handle(req: Req): Record<string, unknown> {
    switch (req.op) {
      case "unshare":
        if (sym.unshare(CLONE_NEWNET) < 0) fail("unshare(CLONE_NEWNET)");
        return { nsFd: openNsFd(), tid: sym.gettid() };
      case "setns": {
        const fd = sym.open(cstr(req.path!), O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) fail(`open ${req.path}`);
        const rc = sym.setns(fd, CLONE_NEWNET);
        sym.close(fd);
        if (rc < 0) fail(`setns ${req.path}`);
        return { nsFd: openNsFd(), tid: sym.gettid() };
      }
      case "setnsFd":
        /* NsSync.start: the namespace by fd, nothing to hand back but the thread */
        if (sym.setns(req.fd!, CLONE_NEWNET) < 0) fail(`setns fd ${req.fd}`);
        return { tid: sym.gettid() };
      case "tap": {
        const fd = sym.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
        if (fd < 0) fail("open /dev/net/tun");
        const ifr = new Uint8Array(40);
        ifr.set(enc.encode(req.name!).subarray(0, 15));
        /* IFF_TAP | IFF_NO_PI, | IFF_VNET_HDR */
        const flags = 0x0002 | 0x1000 | (req.vnetHdr ? 0x4000 : 0);
        ifr[16] = flags & 0xff;
        ifr[17] = flags >> 8;
        if (sym.ioctl(fd, 0x400454can, ifr) < 0) {
          sym.close(fd);
          fail(`TUNSETIFF ${req.name}`);
        }
        let nameEnd = ifr.indexOf(0);
        if (nameEnd < 0 || nameEnd > 16) nameEnd = 16;
        const name = new TextDecoder().decode(ifr.subarray(0, nameEnd));
        if (req.vnetHdr) {
          const sz = new Int32Array([12]);
          if (sym.ioctl(fd, 0x400454d8n, new Uint8Array(sz.buffer)) < 0) {
            sym.close(fd);
            fail("TUNSETVNETHDRSZ");
          }
          /* TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 */
          if (sym.ioctl_int(fd, 0x400454d0n, 7n) < 0) {
            sym.close(fd);
            fail("TUNSETOFFLOAD");
          }
        }
        return { tapFd: fd, name };
      }
      case "tid":
        /* /proc/self/task/TID/net shows the namespace's sockets */
        return { tid: sym.gettid() };
      case "netlink": {
        /* AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE */
        const fd = sym.socket(16, 3 | 0o2000000, 0);
        if (fd < 0) fail("socket(AF_NETLINK)");
        return { nlFd: fd };
      }
      case "write": {
        const fd = sym.open(cstr(req.path!), O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0) fail(`open ${req.path}`);
        const b = enc.encode(req.value!);
        const n = sym.write(fd, b, b.length);
        sym.close(fd);
        if (n < 0) fail(`write ${req.path}`);
        return {};
      }
      case "spawn":
        return { pid: spawn(req.argv!, req.env!) };
      default:
        throw new Fail(`unknown request "${req.op}"`);
    }
  }

  /* The synchronous channel: layout and operations in ns_sync.ts */
  const ST_POSTED = 1;
  const ST_DONE = 2;
  const OP_SOCKET = 1;
  const OP_OPEN = 2;
  const OP_QUIT = 3;
  const OP_CAPS = 4;
  const OP_YIELD = 5;
  let ctl: Int32Array | null = null;
  let text: Uint8Array | null = null;
  const path = new Uint8Array(4096);

  /** Serves the shared buffer until asked to yield (true) or quit (false). */
  function serveSync(sab: SharedArrayBuffer): boolean {
    if (ctl === null || ctl.buffer !== sab) {
      ctl = new Int32Array(sab, 0, 16);
      text = new Uint8Array(sab, 64, 4096);
    }
    for (;;) {
      Atomics.wait(ctl, 0, 0);
      if (Atomics.load(ctl, 0) !== ST_POSTED) continue;
      const op = ctl[1]!;
      let r = -22; /* EINVAL */
      if (op === OP_SOCKET) {
        r = sym.socket(ctl[2]!, ctl[3]!, ctl[4]!);
        if (r < 0) r = -errnoSlot[0]!;
      } else if (op === OP_OPEN) {
        path.set(text!);
        r = sym.open(path, ctl[2]!, 0);
        if (r < 0) r = -errnoSlot[0]!;
      } else if (op === OP_CAPS) {
        /* capabilities are per thread: this one drops its own */
        const err = capsDrop(ctl[2]!, ctl[3] !== 0, ctl[4] !== 0, sym);
        text!.fill(0);
        text!.set(enc.encode(err).subarray(0, 4095));
        r = err === "" ? 0 : -1;
      } else if (op === OP_QUIT || op === OP_YIELD) {
        r = 0;
      }
      ctl[5] = r;
      Atomics.store(ctl, 0, ST_DONE);
      Atomics.notify(ctl, 0);
      if (op === OP_QUIT) return false;
      if (op === OP_YIELD) return true;
    }
  }

  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<Req>) => void) | null;
    postMessage: (m: unknown) => void;
  };
  scope.onmessage = (e: MessageEvent<Req>) => {
    const req = e.data;
    if (req.op === "sync") {
      /* no reply message: the answers go through the buffer */
      if (!serveSync(req.sab!)) scope.onmessage = null;
      return;
    }
    try {
      scope.postMessage({ id: req.id, ok: true, ...handle(req) });
    } catch (x) {
      scope.postMessage({ id: req.id, ok: false, error: x instanceof Error ? x.message : `${x}` });
    }
  };
}
