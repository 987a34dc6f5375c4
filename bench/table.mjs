// Prints the results that bench/load.mjs appended to a JSON-lines file as a Markdown
// table, one row per configuration:  node bench/table.mjs results.jsonl

import { readFileSync } from "node:fs";

import { fixed } from "./lib/stats.mjs";

const file = process.argv[2];
if (!file) {
  console.error("usage: node bench/table.mjs RESULTS.jsonl");
  process.exit(2);
}
let text = "";
try {
  text = readFileSync(file, "utf8");
} catch (error) {
  console.error(`no results (${error.message})`);
  process.exit(1);
}
const rows = text
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line));

const header = [
  "configuration",
  "sessions (busy)",
  "create→idle p50 / p99 ms",
  "latency p50 / p99 / max ms",
  "events/s",
  "runtime RSS peak MiB",
  "RSS per session MiB",
  "runtime CPU streaming",
];
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const r of rows) {
  const cpu = r.runtimeCpuS ? `${fixed((100 * r.runtimeCpuS.stream) / r.stream.durationS, 0)} %` : "-";
  const cells = [
    r.label,
    `${r.sessions} (${r.busy})`,
    `${fixed(r.create.p50)} / ${fixed(r.create.p99)}`,
    `${fixed(r.latencyMs.p50, 2)} / ${fixed(r.latencyMs.p99, 2)} / ${fixed(r.latencyMs.max, 1)}`,
    fixed(r.stream.eventsPerS, 0),
    r.rss ? fixed(r.rss.peakMiB) : "-",
    r.rss ? fixed(r.rss.perSessionMiB, 3) : "-",
    cpu,
  ];
  console.log(`| ${cells.join(" | ")} |`);
}
