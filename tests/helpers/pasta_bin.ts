/**
 * pasta_bin.ts - a `pasta` that any user can run: orzo, or the pasta named by
 * PASTA_BIN (upstream pasta built from source, to prove a test against the
 * reference).
 *
 * orzo is bundled into one file and run by a copy of the pinned deno, both in
 * a world-readable temporary directory (the checkout may not be readable by
 * others), behind a launcher script named `pasta`, so that callers' argv can
 * be used exactly as they write it.
 *
 * @module
 */

import { DENO, REPO, run } from "./topology.ts";

/** An installed translator. */
export interface PastaBin {
  /** the program to run as `pasta` */
  path: string;
  /** "orzo" or "pasta" (PASTA_BIN) */
  kind: "orzo" | "pasta";
  /** removes the installation */
  remove(): Promise<void>;
}

/**
 * Installs a `pasta` runnable by every user: PASTA_BIN when set, else orzo.
 * @returns the program; call remove() in a finally block
 */
export function installPasta(): Promise<PastaBin> {
  const ref = Deno.env.get("PASTA_BIN");
  if (ref !== undefined && ref !== "") {
    return Promise.resolve({ path: ref, kind: "pasta", remove: () => Promise.resolve() });
  }
  return installOrzo();
}

/**
 * Installs orzo as a `pasta` runnable by every user, whatever PASTA_BIN says.
 * @returns the program; call remove() in a finally block
 */
export async function installOrzo(): Promise<PastaBin> {
  const dir = await Deno.makeTempDir({ prefix: "orzo-pasta-" });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    await Deno.chmod(dir, 0o755);
    await Deno.copyFile(DENO, `${dir}/deno`);
    await Deno.chmod(`${dir}/deno`, 0o755);
    const b = await run([DENO, "bundle", "--quiet", "-o", `${dir}/orzo.js`, `${REPO}/main.ts`]);
    if (b.code !== 0) throw new Error(`deno bundle failed: ${b.stderr}`);
    await Deno.chmod(`${dir}/orzo.js`, 0o644);
    await Deno.mkdir(`${dir}/cache`, { mode: 0o777 });
    await Deno.chmod(`${dir}/cache`, 0o777);
    await Deno.writeTextFile(
      `${dir}/pasta`,
      "#!/bin/sh\n" +
        `ORZO_ARGV0=pasta DENO_DIR=${dir}/cache DENO_NO_UPDATE_CHECK=1 ` +
        `exec ${dir}/deno run --quiet --allow-ffi ${dir}/orzo.js "$@"\n`,
    );
    await Deno.chmod(`${dir}/pasta`, 0o755);
    return { path: `${dir}/pasta`, kind: "orzo", remove };
  } catch (e) {
    await remove();
    throw e;
  }
}
