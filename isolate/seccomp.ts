/**
 * seccomp.ts - the system call filter orzo installs once set up.
 *
 * passt and pasta install an allow-list: the few dozen calls their loops
 * make, everything else kills the process. orzo cannot: its process is a
 * JavaScript engine with a JIT compiler, a garbage collector and an async
 * runtime on threads of their own, whose system calls depend on memory
 * pressure, code paths and library versions (README "Privileges" has the
 * measurement). An allow-list would be a list of Deno's internals that breaks
 * on the next upgrade or the first unusual heap. So the filter is a
 * deny-list: calls orzo never makes after set-up, which are the usual steps
 * from a compromised process to more privilege (debugging other processes,
 * mounts, modules, BPF, keyrings, identity changes, namespaces, exec). They
 * fail with EPERM; calls of another architecture (a 32-bit int 0x80 or an
 * x32 call on x86_64) kill the process.
 *
 * The filter is installed with SECCOMP_FILTER_FLAG_TSYNC: the kernel puts it
 * on every thread of the process, Deno's own included, and, because the
 * calling thread has no_new_privs, sets no_new_privs on each of them too
 * (prctl(PR_SET_NO_NEW_PRIVS) alone is per thread).
 *
 * Creating threads must keep working (Deno starts some later): glibc's
 * pthread_create uses clone3, whose flags are in memory that a filter cannot
 * read, so clone3 fails with ENOSYS and glibc falls back to clone, whose
 * flags are checked: a new namespace fails with EPERM.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { errno, SysError } from "../ffi/errno.ts";

/** AUDIT_ARCH_X86_64 */
const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 system calls have this bit set in their number. */
const X32_SYSCALL_BIT = 0x40000000;
/** seccomp(2) */
const SYS_SECCOMP = 317;
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const ENOSYS = 38;
/** clone(2) */
const SYS_CLONE = 56;
/** clone3(2) */
const SYS_CLONE3 = 435;
/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
const CLONE_NEW_ANY = 0x7e020000;

/** System calls (x86_64 numbers) that fail with EPERM once orzo is set up. */
export const SECCOMP_DENIED: Readonly<Record<string, number>> = {
  /* other processes' memory and state */
  ptrace: 101,
  "process_vm_readv": 310,
  "process_vm_writev": 311,
  kcmp: 312,
  "pidfd_getfd": 438,
  "process_madvise": 440,
  /* identity and capabilities */
  setuid: 105,
  setgid: 106,
  setreuid: 113,
  setregid: 114,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  setfsuid: 122,
  setfsgid: 123,
  capset: 126,
  /* namespaces, mounts, the root */
  unshare: 272,
  setns: 308,
  mount: 165,
  umount2: 166,
  "pivot_root": 155,
  chroot: 161,
  "open_tree": 428,
  "move_mount": 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  "mount_setattr": 442,
  "name_to_handle_at": 303,
  "open_by_handle_at": 304,
  /* running other programs */
  execve: 59,
  execveat: 322,
  /* the kernel itself */
  "init_module": 175,
  "finit_module": 313,
  "delete_module": 176,
  "kexec_load": 246,
  "kexec_file_load": 320,
  bpf: 321,
  "perf_event_open": 298,
  userfaultfd: 323,
  iopl: 172,
  ioperm: 173,
  reboot: 169,
  swapon: 167,
  swapoff: 168,
  acct: 163,
  quotactl: 179,
  syslog: 103,
  "lookup_dcookie": 212,
  "fanotify_init": 300,
  personality: 135,
  /* keyrings */
  "add_key": 248,
  "request_key": 249,
  keyctl: 250,
  /* the clock and the host's names */
  settimeofday: 164,
  "clock_settime": 227,
  "clock_adjtime": 305,
  adjtimex: 159,
  sethostname: 170,
  setdomainname: 171,
  /* device nodes */
  mknod: 133,
  mknodat: 259,
};

/* classic BPF opcodes */
const LD_W_ABS = 0x20;
const JMP_JEQ_K = 0x15;
const JMP_JGE_K = 0x35;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;
/* offsets in struct seccomp_data */
const DATA_NR = 0;
const DATA_ARCH = 4;
const DATA_ARG0_LO = 16;

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

/**
 * Builds the filter program (struct sock_filter[]).
 * @returns the instructions, 8 bytes each
 */
export function seccompProgram(): Uint8Array<ArrayBuffer> {
  const p: Insn[] = [
    { code: LD_W_ABS, k: DATA_ARCH },
    { code: JMP_JEQ_K, k: AUDIT_ARCH_X86_64, jf: "kill" },
    { code: LD_W_ABS, k: DATA_NR },
    { code: JMP_JGE_K, k: X32_SYSCALL_BIT, jt: "kill" },
    { code: JMP_JEQ_K, k: SYS_CLONE3, jt: "enosys" },
    { code: JMP_JEQ_K, k: SYS_CLONE, jf: "list" },
    { code: LD_W_ABS, k: DATA_ARG0_LO },
    { code: JMP_JSET_K, k: CLONE_NEW_ANY, jt: "eperm", jf: "allow" },
  ];
  /* a binary search over the sorted numbers: about seven comparisons for any call */
  const nrs = [...new Set(Object.values(SECCOMP_DENIED))].sort((a, b) => a - b);
  let labels = 0;
  const tree = (list: number[], label?: string): void => {
    if (list.length <= 3) {
      list.forEach((nr, i) => {
        p.push({ code: JMP_JEQ_K, k: nr, jt: "eperm", label: i === 0 ? label : undefined });
      });
      p.push({ code: RET_K, k: SECCOMP_RET_ALLOW, label: list.length === 0 ? label : undefined });
      return;
    }
    const mid = list.length >> 1;
    const right = `r${labels++}`;
    p.push({ code: JMP_JGE_K, k: list[mid]!, jt: right, label });
    tree(list.slice(0, mid));
    tree(list.slice(mid), right);
  };
  tree(nrs, "list");
  p.push({ code: RET_K, k: SECCOMP_RET_ALLOW, label: "allow" });
  p.push({ code: RET_K, k: SECCOMP_RET_ERRNO | EPERM, label: "eperm" });
  p.push({ code: RET_K, k: SECCOMP_RET_ERRNO | ENOSYS, label: "enosys" });
  p.push({ code: RET_K, k: SECCOMP_RET_KILL_PROCESS, label: "kill" });

  const at = new Map<string, number>();
  p.forEach((ins, i) => {
    if (ins.label !== undefined) at.set(ins.label, i);
  });
  const out = new Uint8Array(p.length * 8);
  const dv = new DataView(out.buffer);
  p.forEach((ins, i) => {
    const rel = (l: string | undefined) => {
      if (l === undefined) return 0;
      const d = at.get(l)! - (i + 1);
      if (d < 0 || d > 255) throw new Error(`seccomp: jump to ${l} out of range`);
      return d;
    };
    dv.setUint16(i * 8, ins.code, true);
    out[i * 8 + 2] = rel(ins.jt);
    out[i * 8 + 3] = rel(ins.jf);
    dv.setUint32(i * 8 + 4, ins.k >>> 0, true);
  });
  return out;
}

/**
 * Installs the filter on every thread of the process. The calling thread
 * must have no_new_privs set (or CAP_SYS_ADMIN); the other threads get it.
 * @throws SysError when the kernel refuses the filter
 */
export function seccompInstall(): void {
  const filter = seccompProgram();
  const prog = new Uint8Array(16);
  const dv = new DataView(prog.buffer);
  dv.setUint16(0, filter.length / 8, true);
  dv.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(filter))), true);
  const progAddr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(prog)));
  const r = libc.symbols.syscall4(
    BigInt(SYS_SECCOMP),
    BigInt(SECCOMP_SET_MODE_FILTER),
    BigInt(SECCOMP_FILTER_FLAG_TSYNC),
    progAddr,
  );
  /* with TSYNC a positive result is the ID of a thread that could not be synchronised */
  if (r < 0n) throw new SysError("seccomp(SECCOMP_SET_MODE_FILTER)", errno());
  if (r > 0n) throw new Error(`seccomp: thread ${r} cannot take the filter`);
}
