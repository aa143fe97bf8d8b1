import assert from "node:assert/strict";
import { SECCOMP_DENIED, seccompProgram } from "./seccomp.ts";

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const KILL = 0x80000000;
const X86_64 = 0xc000003e;
const I386 = 0x40000003;

let lastSteps = 0;

/** Instructions run for one x86_64 call. */
function steps(prog: Uint8Array, nr: number): number {
  evaluate(prog, X86_64, nr);
  return lastSteps;
}

/** Runs the classic BPF program on one seccomp_data, with the opcodes the filter uses. */
function evaluate(prog: Uint8Array, arch: number, nr: number, arg0 = 0): number {
  const data = new DataView(new ArrayBuffer(64));
  data.setInt32(0, nr, true);
  data.setUint32(4, arch, true);
  data.setUint32(16, arg0, true);
  const p = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  let a = 0;
  let pc = 0;
  for (let steps = 0; pc * 8 < prog.length && steps < 1000; steps++) {
    const code = p.getUint16(pc * 8, true);
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = p.getUint32(pc * 8 + 4, true);
    pc++;
    lastSteps = steps + 1;
    switch (code) {
      case 0x20:
        a = data.getUint32(k, true);
        break;
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x35:
        pc += a >>> 0 >= k ? jt : jf;
        break;
      case 0x45:
        pc += (a & k) !== 0 ? jt : jf;
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`opcode ${code.toString(16)}`);
    }
  }
  throw new Error("fell off the program");
}

Deno.test("seccomp filter: every denied call fails with EPERM, others pass", () => {
  const prog = seccompProgram();
  assert.ok(prog.length / 8 < 4096);
  /* the longest path: a binary search, not a scan of the list */
  let longest = 0;
  for (let nr = 0; nr < 600; nr++) longest = Math.max(longest, steps(prog, nr));
  assert.ok(longest <= 16, `${longest} instructions`);
  for (const [name, nr] of Object.entries(SECCOMP_DENIED)) {
    assert.equal(evaluate(prog, X86_64, nr), EPERM, name);
  }
  const denied = new Set(Object.values(SECCOMP_DENIED));
  for (let nr = 0; nr < 600; nr++) {
    if (denied.has(nr) || nr === 56 || nr === 435) continue;
    assert.equal(evaluate(prog, X86_64, nr), ALLOW, `syscall ${nr}`);
  }
});

Deno.test("seccomp filter: another architecture or an x32 call kills", () => {
  const prog = seccompProgram();
  assert.equal(evaluate(prog, I386, 0), KILL);
  assert.equal(evaluate(prog, I386, 101), KILL);
  assert.equal(evaluate(prog, X86_64, 0x40000000 + 1), KILL);
});

Deno.test("seccomp filter: threads may be created, namespaces may not", () => {
  const prog = seccompProgram();
  /* glibc's pthread_create flags: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID */
  assert.equal(evaluate(prog, X86_64, 56, 0x3d0f00), ALLOW);
  assert.equal(evaluate(prog, X86_64, 56, 0x3d0f00 | 0x10000000), EPERM);
  assert.equal(evaluate(prog, X86_64, 56, 0x40000000), EPERM);
  assert.equal(evaluate(prog, X86_64, 56, 0x00020000), EPERM);
  assert.equal(evaluate(prog, X86_64, 435), ENOSYS);
});
