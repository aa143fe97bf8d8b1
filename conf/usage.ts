/**
 * usage.ts - the --help text and the version string.
 *
 * The option list is generated from the option table, so every option is
 * listed exactly once.
 *
 * @module
 */

import { OPTIONS, type OptionSpec } from "./options.ts";

/** orzo's version. */
export const VERSION = "0.1.0";

/** Column where the help text starts. */
const COLUMN = 34;

const SECTIONS: readonly [string, (o: OptionSpec) => boolean][] = [
  ["Options for both modes:", (o) => o.mode === "both"],
  ["passt mode only:", (o) => o.mode === "passt" || o.mode === "vhost-user"],
  ["pasta mode only:", (o) => o.mode === "pasta"],
];

/** Formats the left column of one option, for example "-t, --tcp-ports SPEC". */
function optionLabel(o: OptionSpec): string {
  const names = [o.name, ...(o.aliases ?? [])].map((n) => `--${n}`).join(", ");
  const short = o.short !== undefined ? `-${o.short}, ` : "    ";
  return `  ${short}${names}${o.arg !== undefined ? ` ${o.arg}` : ""}`;
}

/** Builds the whole help text. */
function buildUsage(): string {
  const lines = [
    "Usage: orzo [OPTION]...                       (passt mode: serve a VM over a UNIX socket)",
    "       orzo --pasta [OPTION]... [COMMAND [ARG]...]",
    "       orzo --pasta [OPTION]... PID",
    "       orzo --pasta [OPTION]... --netns PATH|NAME",
    "",
    'In pasta mode (also when started as "pasta"), without PID or --netns, run',
    "COMMAND, or a shell, in new user and network namespaces and connect them.",
  ];
  for (const [title, pick] of SECTIONS) {
    lines.push("", title);
    for (const o of OPTIONS.filter(pick)) {
      const label = optionLabel(o);
      if (label.length < COLUMN) lines.push(`${label.padEnd(COLUMN)}${o.help}`);
      else lines.push(label, `${"".padEnd(COLUMN)}${o.help}`);
      if (o.dflt !== undefined) lines.push(`${"".padEnd(COLUMN)}  default: ${o.dflt}`);
    }
  }
  lines.push(
    "",
    "Port SPEC for -t, -u, -T, -U:",
    "  none                        forward nothing",
    "  [ADDR[%IF]/]ITEM[,ITEM]...  listen on ADDR and/or interface IF only",
    "  ITEM is one of:",
    "    FIRST[-LAST][:[TOADDR/]TOFIRST[-TOLAST]]   forward, optionally translated",
    "    ~FIRST[-LAST]             exclude; excludes alone mean all other ports",
    "    all[:TOADDR]              all non-ephemeral ports",
    "    auto                      (pasta) only ports bound on the other side",
    "  Examples: -t 22  -t 8080:80  -t 127.0.0.1/5000-5010  -t ~20000-20010  -t auto",
    "",
  );
  return lines.join("\n");
}

/** The text --help prints. */
export const USAGE_TEXT: string = buildUsage();
