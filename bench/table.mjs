// Prints the results that bench/load.mjs appended to a JSON-lines file as one Markdown
// table, the servers of each load on adjacent rows so they read side by side:
//   node bench/table.mjs results.jsonl

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

/** What makes two runs the same load, and how it reads in the table. */
function loadOf(r) {
  const busy = r.busy === r.sessions ? `${r.sessions}` : `${r.busy} of ${r.sessions}`;
  if (r.mode === "burst") return `burst: ${busy} sessions × ${r.lines} events`;
  const perS = r.intervalMs > 0 ? fixed(1000 / r.intervalMs, 0) : "∞";
  return `paced: ${busy} sessions × ${perS} events/s, ${r.lines} each`;
}

// Loads in the order they first ran; within a load, servers in the order they ran.
const loads = new Map();
for (const r of rows) {
  const key = loadOf(r);
  if (!loads.has(key)) loads.set(key, []);
  loads.get(key).push(r);
}

const header = [
  "load",
  "server",
  "create→idle p50 / p99 ms",
  "latency p50 / p99 / max ms",
  "events/s",
  "gaps",
  "server CPU per event µs",
  "server CPU per session lifecycle ms",
  "server CPU streaming, % of a core",
  "server RSS peak MiB",
];
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const [load, runs] of loads) {
  for (const r of runs) {
    const cpu = r.serverCpuS;
    const failed =
      r.create.failed + r.stream.failed + (r.delete?.failed ?? 0) + (r.lifecycle?.failed ?? 0);
    const cells = [
      load,
      r.label || r.server,
      `${fixed(r.create.p50)} / ${fixed(r.create.p99)}`,
      `${fixed(r.latencyMs.p50, 2)} / ${fixed(r.latencyMs.p99, 2)} / ${fixed(r.latencyMs.max, 1)}`,
      fixed(r.stream.eventsPerS, 0),
      failed > 0 ? `${r.missed} (${failed} failed)` : `${r.missed}`,
      fixed(r.cpuPerEventUs, 1),
      fixed(r.cpuPerSessionMs, 2),
      cpu ? fixed((100 * cpu.stream) / r.stream.durationS, 0) : "-",
      r.rss ? fixed(r.rss.peakMiB) : "-",
    ];
    console.log(`| ${cells.join(" | ")} |`);
  }
}
