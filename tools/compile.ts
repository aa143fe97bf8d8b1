/**
 * compile.ts - builds the single-binary orzo (`deno task compile`).
 *
 * `deno compile` embeds the program into Deno's `denort` runtime, which Deno
 * downloads from dl.deno.land; npm does not ship it. Set DENORT_BIN to a
 * downloaded `denort` where that host cannot be reached. Without either, this
 * says so in one line and points at `deno task bundle`, whose output runs on
 * the pinned Deno.
 *
 * @module
 */

import { ORZO_V8_FLAGS } from "./v8_flags.ts";

const out = Deno.args[0] ?? "dist/orzo";
const denort = Deno.env.get("DENORT_BIN");
if (denort !== undefined) {
  try {
    Deno.statSync(denort);
  } catch {
    console.error(`compile: DENORT_BIN "${denort}" does not exist`);
    Deno.exit(1);
  }
}
const cmd = new Deno.Command(Deno.execPath(), {
  args: ["compile", "--quiet", "--allow-ffi", ORZO_V8_FLAGS, "--output", out, "main.ts"],
  stdout: "inherit",
  stderr: "piped",
});
const r = await cmd.output();
if (r.code !== 0) {
  const text = new TextDecoder().decode(r.stderr);
  const offline = /dl\.deno\.land|dns error|error sending request|download/i.test(text);
  console.error(
    offline
      ? "compile: the denort runtime cannot be downloaded here: set DENORT_BIN to a denort " +
        "binary, or use `deno task bundle` and run dist/orzo.js with `deno run --allow-ffi`"
      : `compile: ${text.trim().split("\n").pop()}`,
  );
  Deno.exit(1);
}
console.log(`compile: wrote ${out}`);
