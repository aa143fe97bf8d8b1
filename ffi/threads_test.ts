import assert from "node:assert/strict";
import { procDirNumbers } from "./proc_dir.ts";
import { libc } from "./libc.ts";
import { SCHED_IDLE, V8_WORKER_COMM } from "./threads.ts";

const DENO = Deno.execPath();
const THREADS = new URL("./threads.ts", import.meta.url).href;

Deno.test("procDirNumbers lists this process's threads and descriptors", () => {
  const tids = procDirNumbers("/proc/self/task");
  assert.ok(tids.includes(libc.symbols.gettid()), JSON.stringify(tids));
  assert.ok(tids.includes(Deno.pid));
  assert.deepEqual(tids, [...tids].sort((a, b) => a - b));
  const fds = procDirNumbers("/proc/self/fd");
  for (const fd of [0, 1, 2]) assert.ok(fds.includes(fd), JSON.stringify(fds));
  assert.deepEqual(procDirNumbers("/nonexistent"), []);
});

Deno.test("v8WorkersDeprioritise puts V8's workers under SCHED_IDLE and no other thread", async () => {
  /* in a child: the test runner's own threads keep their priority */
  const script = `
    import { v8WorkersDeprioritise } from "${THREADS}";
    const changed = v8WorkersDeprioritise();
    const threads = [];
    for (const e of Deno.readDirSync("/proc/self/task")) {
      const comm = Deno.readTextFileSync("/proc/self/task/" + e.name + "/comm").trim();
      const stat = Deno.readTextFileSync("/proc/self/task/" + e.name + "/stat");
      /* after "(comm) ": state is field 3, nice field 19, policy field 41 */
      const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
      threads.push({ comm, nice: Number(f[16]), policy: Number(f[38]) });
    }
    console.log(JSON.stringify({ changed, threads }));
  `;
  const out = await new Deno.Command(DENO, {
    args: ["eval", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    changed: number;
    threads: { comm: string; nice: number; policy: number }[];
  };
  const workers = r.threads.filter((t) => t.comm === V8_WORKER_COMM);
  assert.ok(workers.length >= 1, JSON.stringify(r));
  assert.equal(r.changed, workers.length, JSON.stringify(r));
  for (const t of r.threads) {
    assert.equal(t.policy, t.comm === V8_WORKER_COMM ? SCHED_IDLE : 0, JSON.stringify(r));
    assert.equal(t.nice, 0, JSON.stringify(r));
  }
});
