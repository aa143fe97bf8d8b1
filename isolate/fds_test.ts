import assert from "node:assert/strict";

const DENO = Deno.execPath();
const FDS = new URL("./fds.ts", import.meta.url).href;

Deno.test("closeInheritedFds closes what the caller passed, spares `keep` and Deno's own", async () => {
  /* in a child, so that the test runner's own inherited descriptors stay open */
  const script = `
    import { closeInheritedFds, openFds } from "${FDS}";
    const before = openFds();
    const closed = closeInheritedFds([8]);
    console.log(JSON.stringify({ before, closed, after: openFds() }));
  `;
  const out = await new Deno.Command("sh", {
    args: ["-c", `exec 7</dev/null 8</dev/null 9</dev/null; exec "$0" eval "$1"`, DENO, script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    before: number[];
    closed: number[];
    after: number[];
  };
  for (const fd of [0, 1, 2, 7, 8, 9]) assert.ok(r.before.includes(fd), JSON.stringify(r));
  assert.ok(r.closed.includes(7) && r.closed.includes(9), JSON.stringify(r));
  assert.ok(!r.closed.includes(8), JSON.stringify(r));
  assert.ok(r.after.includes(8), JSON.stringify(r));
  assert.ok(!r.after.includes(7) && !r.after.includes(9), JSON.stringify(r));
  /* Deno's own descriptors (epoll, eventfd, caches...) stay */
  assert.ok(r.after.filter((fd) => fd > 2).length >= 4, JSON.stringify(r));
  assert.deepEqual(r.after, r.before.filter((fd) => !r.closed.includes(fd)));
});

Deno.test("closeInheritedFds leaves V8's perf map open (--perf-basic-prof)", async () => {
  const script = `
    import { closeInheritedFds, isV8ProfilerOutput, openFds } from "${FDS}";
    const map = openFds().filter((fd) => isV8ProfilerOutput(fd));
    const closed = closeInheritedFds();
    console.log(JSON.stringify({ pid: Deno.pid, map, closed, after: openFds() }));
  `;
  /* V8 also writes an isolate-*.log into its working directory */
  const cwd = await Deno.makeTempDir();
  const out = await new Deno.Command(DENO, {
    args: ["eval", "--v8-flags=--perf-basic-prof", script],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(cwd, { recursive: true });
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    pid: number;
    map: number[];
    closed: number[];
    after: number[];
  };
  try {
    assert.equal(r.map.length, 1, `the perf map's descriptor: ${JSON.stringify(r)}`);
    assert.ok(!r.closed.includes(r.map[0]!), JSON.stringify(r));
    assert.ok(r.after.includes(r.map[0]!), JSON.stringify(r));
  } finally {
    await Deno.remove(`/tmp/perf-${r.pid}.map`).catch(() => {});
  }
});
