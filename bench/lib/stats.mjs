// Clock, percentiles and a bounded-concurrency helper for the load benchmark.

/**
 * Wall-clock microseconds since the Unix epoch with sub-millisecond resolution, comparable
 * with the scripted agent's `stamp_us` (both read the system's real-time clock).
 *
 * Date.now() is whole milliseconds and performance.now() has no epoch; `calibrate` finds
 * the offset between them at the moment Date.now() ticks over, which pins it to within a
 * few microseconds, and `nowUs` then reads the fine monotonic clock plus that offset.
 */
let offsetUs = (performance.timeOrigin ?? Date.now()) * 1000;

/**
 * Re-derives the epoch offset of the monotonic clock; busy-waits up to ~10 ms. A single
 * reading is off by however long the process was preempted inside the loop, so the
 * median of several is kept.
 */
export function calibrate(readings = 9) {
  const offsets = [];
  for (let i = 0; i < readings; i += 1) offsets.push(tickOffsetUs());
  offsets.sort((a, b) => a - b);
  offsetUs = offsets[Math.floor(offsets.length / 2)];
}

/** Epoch offset of performance.now(), in µs, read at the moment Date.now() ticks. */
function tickOffsetUs() {
  const start = Date.now();
  let tick = start;
  let at = performance.now();
  while (tick === start) {
    at = performance.now();
    tick = Date.now();
  }
  return tick * 1000 - at * 1000;
}

/** Microseconds since the Unix epoch. */
export function nowUs() {
  return offsetUs + performance.now() * 1000;
}

/** Percentile `p` (0-100) of an ascending array, nearest-rank; null if empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** p50, p99 and max of `values` (any order), plus the count. */
export function summary(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? sorted[sorted.length - 1] : null,
  };
}

/** Runs `task(item, index)` over `items` with at most `limit` running at once. */
export async function pool(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A number with `digits` decimals, or "-" for null. */
export function fixed(value, digits = 1) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}
