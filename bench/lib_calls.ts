/**
 * lib_calls.ts - what a call on a library network (mod.ts startPasta) costs:
 * a round trip from the program's thread to the network's Worker and back,
 * in a burst and after the loop has been idle (then it sleeps in epoll_wait
 * until the eventfd wakes it). Also the CPU the idle network uses.
 *
 * Run as root: `deno run --allow-all bench/lib_calls.ts`. It makes a new
 * namespace with a tap and no forwards; no traffic.
 *
 * @module
 */

import { startPasta } from "../mod.ts";

function cpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(" ");
  return (Number(f[13]) + Number(f[14])) * 10;
}

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(3);
  return `median ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${s.at(-1)!.toFixed(3)} ms`;
}

const t0 = performance.now();
const net = await startPasta([
  "--config-net",
  "-q",
  "-t",
  "none",
  "-u",
  "none",
  "-T",
  "none",
  "-U",
  "none",
]);
console.log(`start: ${(performance.now() - t0).toFixed(0)} ms`);
try {
  const burst: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const t = performance.now();
    await net.stats();
    burst.push(performance.now() - t);
  }
  console.log(`stats() in a burst of 1000: ${summary(burst)}`);
  const idle: number[] = [];
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const t = performance.now();
    await net.listForwards();
    idle.push(performance.now() - t);
  }
  console.log(`listForwards() after 100 ms idle: ${summary(idle)}`);
  const c0 = cpuMs();
  await new Promise((r) => setTimeout(r, 5000));
  console.log(`CPU of the idle process: ${((cpuMs() - c0) / 5).toFixed(1)} ms per second`);
} finally {
  await net.close();
}
