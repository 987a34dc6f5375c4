// Load benchmark client: N concurrent sessions with the scripted agent, over Socket.IO.
//
//   node bench/load.mjs --url http://127.0.0.1:4000 --pid <server pid> \
//     [--mode paced|burst] [--sessions 100] [--busy N] [--lines 100] [--interval-ms 50]
//     [--server runtime] [--label text] [--json FILE]
//
// Four phases, each with the server's own CPU time read before and after it:
// 1. create: one websocket per `--per-socket` sessions, the sessions created
//    `--create-concurrency` at a time (timing create → ack, the ack comes once the session
//    is idle);
// 2. stream: `stamp <lines> <interval>` to the first `--busy` sessions, and every turn's
//    result awaited. Paced mode (the default) spaces each agent's lines `--interval-ms`
//    apart, like tokens, the sessions' starts spread over one interval; burst mode writes
//    them as fast as the agent can. Each stamped line carries the time the agent wrote it;
//    the difference to the time this process got the envelope is the latency;
// 3. delete: every session deleted, `--create-concurrency` at a time;
// 4. lifecycle: `--lifecycle-sessions` more sessions created and deleted with no turn in
//    between, the same number at a time.
// The server's CPU per event is phase 2's over the envelopes received; its CPU per session
// lifecycle (create → idle → delete) is phase 4's over its sessions, so that it does not
// depend on how much a session streamed. `bench/run` starts the servers and calls this;
// see docs/benchmarks.md.

import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";

import {
  cpuSeconds,
  descendantsCpuSeconds,
  descendantsRss,
  machineTicks,
  rssKiB,
  rssSampler,
} from "./lib/proc.mjs";
import { Tally, connectAll, createSession, deleteSession, runTurn } from "./lib/sessions.mjs";
import { calibrate, fixed, nowUs, pool, sleep, summary } from "./lib/stats.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    pid: { type: "string" },
    sessions: { type: "string", default: "100" },
    busy: { type: "string" },
    lines: { type: "string", default: "100" },
    "interval-ms": { type: "string", default: "50" },
    mode: { type: "string", default: "paced" },
    server: { type: "string", default: "runtime" },
    "create-concurrency": { type: "string", default: "8" },
    "lifecycle-sessions": { type: "string", default: "100" },
    "per-socket": { type: "string", default: "1" },
    "agent-type": { type: "string", default: "bench" },
    "timeout-s": { type: "string", default: "120" },
    label: { type: "string", default: "" },
    json: { type: "string" },
  },
});

function count(name, min = 0) {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`--${name} must be an integer >= ${min}, got ${args[name]}`);
  }
  return value;
}

const opts = {
  url: args.url,
  pid: args.pid === undefined ? null : Number(args.pid),
  sessions: count("sessions", 1),
  lines: count("lines", 1),
  intervalMs: count("interval-ms"),
  createConcurrency: count("create-concurrency", 1),
  perSocket: count("per-socket", 1),
  lifecycleSessions: count("lifecycle-sessions"),
  timeoutMs: count("timeout-s", 1) * 1000,
};
opts.busy = args.busy === undefined ? opts.sessions : Math.min(count("busy"), opts.sessions);
if (!opts.url) throw new Error("--url is required");
if (args.mode !== "paced" && args.mode !== "burst") {
  throw new Error(`--mode must be paced or burst, got ${args.mode}`);
}
opts.mode = args.mode;
// A burst is the same directive with no pause between lines.
if (opts.mode === "burst") opts.intervalMs = 0;

const MiB = 1024;

async function main() {
  calibrate();
  const tally = new Tally();
  const rss = opts.pid ? rssSampler(opts.pid) : null;
  const idleKiB = opts.pid ? rssKiB(opts.pid) : null;
  const socketCount = Math.ceil(opts.sessions / opts.perSocket);
  const sockets = await connectAll(opts.url, socketCount, 50, tally, opts.timeoutMs);

  rss?.phase("create");
  const cpu = [serverCpu()];
  const created = await createAll(sockets, tally);
  cpu.push(serverCpu());
  const sessions = created.filter((c) => c.session).map((c) => c.session);
  await sleep(500);
  const settledKiB = opts.pid ? rssKiB(opts.pid) : null;
  const agentsIdle = opts.pid ? descendantsRss(opts.pid) : null;

  rss?.phase("stream");
  calibrate();
  cpu.push(serverCpu());
  const agentsBefore = opts.pid ? descendantsCpuSeconds(opts.pid) : null;
  const machineBefore = machineTicks();
  const clientBefore = process.cpuUsage();
  const stream = await streamAll(sessions.slice(0, opts.busy), tally);
  const client = process.cpuUsage(clientBefore);
  const machineAfter = machineTicks();
  cpu.push(serverCpu());
  const agentsCpuS = opts.pid ? descendantsCpuSeconds(opts.pid) - agentsBefore : null;
  const peaks = rss?.stop() ?? {};

  cpu.push(serverCpu());
  const deleted = await deleteAll(sessions);
  cpu.push(serverCpu());
  const lifecycle = await lifecycleAll(sockets, tally, cpu);
  for (const socket of sockets) socket.close();
  const serverCpuS =
    cpu[0] === null
      ? null
      : {
          create: cpu[1] - cpu[0],
          stream: cpu[3] - cpu[2],
          delete: cpu[5] - cpu[4],
          lifecycle: cpu[7] - cpu[6],
        };
  const result = {
    label: args.label,
    server: args.server,
    mode: opts.mode,
    sessions: opts.sessions,
    busy: Math.min(opts.busy, sessions.length),
    lines: opts.lines,
    intervalMs: opts.intervalMs,
    create: createStats(created),
    delete: deleted,
    lifecycle,
    latencyMs: scaled(summary(tally.latenciesUs), 1 / 1000),
    stream,
    missed: tally.missed,
    rss: rssStats(idleKiB, settledKiB, peaks, sessions.length),
    agents: { idle: agentsIdle, streaming: stream.agents },
    // CPU seconds the server process used in each phase (its agents are not in it).
    serverCpuS,
    cpuPerEventUs: serverCpuS && stream.envelopes > 0 ? (1e6 * serverCpuS.stream) / stream.envelopes : null,
    cpuPerSessionMs:
      serverCpuS && lifecycle.count > 0 ? (1e3 * serverCpuS.lifecycle) / lifecycle.count : null,
    clientStreamCpuS: (client.user + client.system) / 1e6,
    agentsStreamCpuS: agentsCpuS,
    // Share of all cores busy while streaming, whoever used them.
    machineBusy:
      (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
  };
  print(result);
  if (args.json) appendFileSync(args.json, `${JSON.stringify(result)}\n`);
}

async function createAll(sockets, tally) {
  const started = nowUs();
  const slots = Array.from({ length: opts.sessions }, (_, i) => sockets[i % sockets.length]);
  const created = await pool(slots, opts.createConcurrency, (socket) =>
    createSession(socket, args["agent-type"], tally, opts.timeoutMs),
  );
  created.wallS = (nowUs() - started) / 1e6;
  return created;
}

/** The server's CPU seconds so far, or null without --pid. */
function serverCpu() {
  return opts.pid ? cpuSeconds(opts.pid) : null;
}

/**
 * Creates `--lifecycle-sessions` sessions and deletes each once it is idle, pushing the
 * server's CPU before and after onto `cpu`. Returns how many completed both.
 */
async function lifecycleAll(sockets, tally, cpu) {
  const slots = Array.from({ length: opts.lifecycleSessions }, (_, i) => sockets[i % sockets.length]);
  cpu.push(serverCpu());
  const outcomes = await pool(slots, opts.createConcurrency, async (socket) => {
    const created = await createSession(socket, args["agent-type"], tally, opts.timeoutMs);
    if (!created.session) return false;
    return (await deleteSession(created.session, opts.timeoutMs)).ok;
  });
  cpu.push(serverCpu());
  const count = outcomes.filter(Boolean).length;
  return { count, failed: outcomes.length - count };
}

/** Deletes every session, `--create-concurrency` at a time; timings and failures. */
async function deleteAll(sessions) {
  const started = nowUs();
  const outcomes = await pool(sessions, opts.createConcurrency, (session) =>
    deleteSession(session, opts.timeoutMs),
  );
  const ok = outcomes.filter((o) => o.ok);
  return {
    ...summary(ok.map((o) => o.ms)),
    failed: outcomes.length - ok.length,
    errors: outcomes.filter((o) => !o.ok).map((o) => o.error).slice(0, 5),
    wallS: (nowUs() - started) / 1e6,
  };
}

function createStats(created) {
  const ok = created.filter((c) => c.session);
  const errors = {};
  for (const c of created) if (c.error) errors[c.error] = (errors[c.error] ?? 0) + 1;
  return {
    ...summary(ok.map((c) => c.ms)),
    failed: created.length - ok.length,
    errors,
    wallS: created.wallS,
    concurrency: opts.createConcurrency,
  };
}

/** Runs one stamped turn on every busy session at once, starts spread over an interval. */
async function streamAll(busy, tally) {
  const content = `stamp ${opts.lines} ${opts.intervalMs}`;
  const expectedMs = opts.lines * opts.intervalMs;
  const before = tally.envelopes;
  let agents = null;
  const probe = opts.pid
    ? setTimeout(() => (agents = descendantsRss(opts.pid)), Math.max(expectedMs / 2, 50))
    : null;
  tally.measuring = true;
  const started = nowUs();
  const outcomes = await Promise.allSettled(
    busy.map(async (session, i) => {
      await sleep((i / busy.length) * opts.intervalMs);
      return runTurn(session, content, expectedMs + opts.timeoutMs);
    }),
  );
  const durationS = (nowUs() - started) / 1e6;
  tally.measuring = false;
  clearTimeout(probe);
  const failures = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason.message);
  const envelopes = tally.envelopes - before;
  return {
    durationS,
    envelopes,
    eventsPerS: envelopes / durationS,
    turnsOk: outcomes.length - failures.length,
    failures: failures.slice(0, 5),
    failed: failures.length,
    agents,
  };
}

function scaled(stats, factor) {
  const out = { ...stats };
  for (const key of ["p50", "p99", "max"]) if (out[key] !== null) out[key] *= factor;
  return out;
}

function rssStats(idleKiB, settledKiB, peaks, sessions) {
  if (idleKiB === null) return null;
  const peakKiB = Math.max(...Object.values(peaks), settledKiB ?? 0);
  return {
    idleMiB: idleKiB / MiB,
    sessionsIdleMiB: settledKiB / MiB,
    peakMiB: peakKiB / MiB,
    perSessionMiB: sessions > 0 ? (peakKiB - idleKiB) / MiB / sessions : null,
  };
}

function print(r) {
  const c = r.create;
  const l = r.latencyMs;
  const s = r.stream;
  const lines = [
    `== ${r.label || "run"}: ${r.sessions} sessions, ${r.busy} busy, ` +
      (r.mode === "burst"
        ? `${r.lines} lines each as fast as the agent writes (burst)`
        : `${r.lines} lines each every ${r.intervalMs} ms (paced)`),
    `create->idle  p50 ${fixed(c.p50)} ms  p99 ${fixed(c.p99)} ms  max ${fixed(c.max)} ms` +
      `  (${c.count} ok, ${c.failed} failed ${JSON.stringify(c.errors)}, ` +
      `${c.concurrency} at a time, ${fixed(c.count / c.wallS)} creates/s)`,
    `latency       p50 ${fixed(l.p50, 2)} ms  p99 ${fixed(l.p99, 2)} ms  max ${fixed(l.max, 2)} ms` +
      `  (${l.count} stamped lines)`,
    `events/s      ${fixed(s.eventsPerS, 0)}  (${s.envelopes} envelopes in ` +
      `${fixed(s.durationS, 2)} s; turns ${s.turnsOk} ok, ${s.failed} failed; missed (seq gaps) ${r.missed})`,
  ];
  if (r.rss) {
    lines.push(
      `${r.server} RSS idle ${fixed(r.rss.idleMiB)} MiB, sessions idle ` +
        `${fixed(r.rss.sessionsIdleMiB)} MiB, peak ${fixed(r.rss.peakMiB)} MiB; ` +
        `${fixed(r.rss.perSessionMiB, 3)} MiB per session`,
    );
    const a = r.agents.streaming ?? r.agents.idle;
    lines.push(
      `children      ${a.count} processes under the server (agents; for the runtime also its sandbox helpers), ` +
        `${fixed(a.totalKiB / MiB)} MiB RSS total`,
    );
    const cpu = r.serverCpuS;
    lines.push(
      `CPU           ${r.server} ${fixed(cpu.create, 2)} s creating, ${fixed(cpu.stream, 2)} s ` +
        `streaming (${fixed((100 * cpu.stream) / s.durationS, 0)} % of a core), ` +
        `${fixed(cpu.delete, 2)} s deleting; ` +
        `children ${fixed(r.agentsStreamCpuS, 2)} s; client ${fixed(r.clientStreamCpuS, 2)} s; ` +
        `machine ${fixed(100 * r.machineBusy, 0)} % busy`,
      `CPU per event ${fixed(r.cpuPerEventUs, 1)} µs; per session lifecycle ` +
        `(create → idle → delete) ${fixed(r.cpuPerSessionMs, 2)} ms ` +
        `(${r.lifecycle.count} sessions, ${r.lifecycle.failed} failed)`,
    );
  }
  const d = r.delete;
  lines.push(
    `delete        p50 ${fixed(d.p50)} ms  p99 ${fixed(d.p99)} ms  (${d.count} ok, ${d.failed} failed)`,
  );
  for (const failure of s.failures) lines.push(`  failure: ${failure}`);
  for (const failure of d.errors) lines.push(`  delete failure: ${failure}`);
  console.log(lines.join("\n"));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`load: ${error.stack ?? error}`);
    process.exit(1);
  },
);
