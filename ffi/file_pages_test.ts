import assert from "node:assert/strict";
import {
  FILE_TRIM_LATEST_MS,
  filePagesFind,
  filePagesTrim,
  filePagesTrimWhenQuiet,
} from "./file_pages.ts";

const SMAPS =
  `55d0a0000000-55d0a1000000 r--p 00000000 08:01 1234                       /usr/bin/deno
Size:              16384 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0a1000000-55d0a2000000 r-xp 01000000 08:01 1234                       /usr/bin/deno
Anonymous:             0 kB
Swap:                  0 kB
55d0a2000000-55d0a2100000 r--p 02000000 08:01 1234                       /usr/bin/deno
Anonymous:          1024 kB
Swap:                  0 kB
55d0a2100000-55d0a2108000 r--p 02100000 08:01 1234                       /usr/bin/deno
Anonymous:             0 kB
Swap:                 32 kB
55d0a2108000-55d0a2200000 rw-p 02108000 08:01 1234                       /usr/bin/deno
Anonymous:             0 kB
7f0000000000-7f0000200000 r-xp 00000000 00:00 0 
Anonymous:             0 kB
7f0000200000-7f0000300000 r--s 00000000 08:01 99                         /tmp/shared
Anonymous:             0 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           132 kB
`;

Deno.test("filePagesFind() lists read-only private file mappings without private pages", () => {
  assert.deepEqual(filePagesFind(SMAPS), [
    { start: 0x55d0a0000000n, len: 0x1000000n },
    { start: 0x55d0a1000000n, len: 0x1000000n },
  ]);
  assert.deepEqual(filePagesFind(""), []);
});

function rssFileKiB(): number {
  const m = /^RssFile:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/self/status"));
  return Number(m![1]);
}

Deno.test("filePagesTrim() lowers this process's file RSS, and the process runs on", () => {
  const before = rssFileKiB();
  assert.ok(filePagesTrim() > 0, "some mappings released");
  const after = rssFileKiB();
  assert.ok(after < before, `RssFile ${before} -> ${after} kB`);
  /* the code it let go of comes back on use */
  const x = JSON.parse(JSON.stringify({ a: [1, 2, 3] }));
  assert.deepEqual(x, { a: [1, 2, 3] });
});

Deno.test("filePagesTrimWhenQuiet() trims once, after the loop has dispatched nothing for a while", () => {
  const loop = { post: [] as ((now: number) => void)[], events: new Float64Array(3) };
  let trims = 0;
  /* types 1 and 2 carry traffic, type 0 is a timer */
  filePagesTrimWhenQuiet(loop, [1, 2], 1000, () => trims++);
  const tick = (now: number) => {
    loop.events[0]!++;
    loop.post.forEach((p) => p(now));
  };
  /* busy: traffic in every batch, for 5 s */
  for (let t = 0; t <= 5000; t += 50) {
    loop.events[1 + (t % 2)]!++;
    tick(t);
  }
  assert.equal(trims, 0, "trimmed while busy");
  tick(5500);
  assert.equal(trims, 0, "trimmed before the quiet time");
  tick(6001);
  assert.equal(trims, 1);
  for (let t = 6050; t < 9000; t += 50) tick(t);
  assert.equal(trims, 1, "trimmed more than once");
});

Deno.test("filePagesTrimWhenQuiet() asks the loop to wake when the trim falls due", () => {
  const asked: number[] = [];
  const loop = {
    post: [] as ((now: number) => void)[],
    events: new Float64Array(2),
    wakeBy: (at: number) => asked.push(at),
  };
  let trims = 0;
  filePagesTrimWhenQuiet(loop, [1], 1000, () => trims++);
  loop.events[1]!++;
  loop.post.forEach((p) => p(200));
  assert.deepEqual(asked, [1200], "a second after the last traffic");
  loop.post.forEach((p) => p(700));
  assert.deepEqual(asked, [1200, 1200], "asked again after each wait");
  loop.post.forEach((p) => p(1200));
  assert.equal(trims, 1);
  loop.post.forEach((p) => p(2500));
  assert.deepEqual(asked, [1200, 1200], "nothing asked once trimmed");
});

Deno.test("filePagesTrimWhenQuiet() trims a network busy from the start after FILE_TRIM_LATEST_MS", () => {
  const loop = { post: [] as ((now: number) => void)[], events: new Float64Array(2) };
  let trimmedAt = -1;
  filePagesTrimWhenQuiet(loop, [1], 1000, () => trimmedAt = t);
  let t = 0;
  for (; t <= 2 * FILE_TRIM_LATEST_MS; t += 50) {
    loop.events[1]!++;
    loop.post.forEach((p) => p(t));
  }
  assert.equal(trimmedAt, FILE_TRIM_LATEST_MS);
});
