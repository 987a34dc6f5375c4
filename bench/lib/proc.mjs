// Memory of the runtime process and of its descendants (the sandboxes' agents), read
// from /proc. Linux only; every reader returns null rather than throw when a process is
// gone, since agents come and go while they are measured.

import { readFileSync, readdirSync } from "node:fs";

/** VmRSS of `pid` in KiB, or null if the process is gone. */
export function rssKiB(pid) {
  let status;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) : null;
}

/** The parent pid of every process, as a Map pid -> ppid. */
function parents() {
  const map = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    // The command name is in parentheses and may hold spaces: read after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    map.set(Number(name), Number(fields[1]));
  }
  return map;
}

/** Every descendant of `pid` (children, grandchildren, ...). */
export function descendants(pid) {
  const children = new Map();
  for (const [child, parent] of parents()) {
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(child);
  }
  const found = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.pop();
    found.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return found;
}

/** How many descendants `pid` has and their summed VmRSS in KiB. */
export function descendantsRss(pid) {
  let count = 0;
  let totalKiB = 0;
  for (const child of descendants(pid)) {
    const rss = rssKiB(child);
    if (rss === null) continue;
    count += 1;
    totalKiB += rss;
  }
  return { count, totalKiB };
}

/**
 * Samples the VmRSS of `pid` every `everyMs` and keeps the peak per phase. `phase(name)`
 * starts a new phase; `stop()` ends sampling and returns { phase: peakKiB }.
 */
export function rssSampler(pid, everyMs = 100) {
  const peaks = {};
  let current = "start";
  const sample = () => {
    const rss = rssKiB(pid);
    if (rss !== null) peaks[current] = Math.max(peaks[current] ?? 0, rss);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    phase(name) {
      sample();
      current = name;
      sample();
    },
    stop() {
      sample();
      clearInterval(timer);
      return peaks;
    },
  };
}

/** CPU seconds (user + system) `pid` has used so far, or null if it is gone. */
export function cpuSeconds(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on
  // Linux); fields here start at field 3.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds used so far by every descendant of `pid` that is still alive. */
export function descendantsCpuSeconds(pid) {
  let total = 0;
  for (const child of descendants(pid)) total += cpuSeconds(child) ?? 0;
  return total;
}

/** Busy and total CPU time of the whole machine so far, in clock ticks (/proc/stat). */
export function machineTicks() {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  // idle and iowait are fields 4 and 5 of the "cpu" line.
  return { busy: total - ticks[3] - ticks[4], total };
}
