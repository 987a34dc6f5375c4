// Each session's event log, with the semantics of the runtime's SessionStore contract.
import { v } from "convex/values";
import { fail, internalMutation, internalQuery, pageSize } from "./server";
import { event } from "./tables";

/** Stop filling a page of events past this many bytes of data: returns stay far below 16 MiB. */
const PAGE_BYTES = 8 * 1024 * 1024;

/**
 * Appends a batch in one transaction. Seqs must strictly increase within the batch
 * (INVALID_INPUT otherwise); seqs already stored are skipped, so a retried batch is
 * harmless. A session without a record is NOT_FOUND. Returns how many were inserted.
 */
export const append = internalMutation({
  args: { sessionId: v.string(), events: v.array(event) },
  returns: v.object({ inserted: v.number() }),
  handler: async (ctx, { sessionId, events }) => {
    for (let i = 1; i < events.length; i++) {
      if (events[i].seq <= events[i - 1].seq) fail("INVALID_INPUT", "event seqs must strictly increase");
    }
    const session = await ctx.db
      .query("agentRuntimeSessions")
      .withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId))
      .unique();
    if (session === null) fail("NOT_FOUND", `session ${sessionId}`);
    let inserted = 0;
    for (const e of events) {
      const stored = await ctx.db
        .query("agentRuntimeEvents")
        .withIndex("by_sessionId_seq", (q) => q.eq("sessionId", sessionId).eq("seq", e.seq))
        .first();
      if (stored !== null) continue;
      await ctx.db.insert("agentRuntimeEvents", { sessionId, ...e });
      inserted++;
    }
    return { inserted };
  },
});

/**
 * Events with seq greater than `after`, oldest first, at most `limit` (and at most about
 * 8 MiB of data, but always at least one). `isDone` is true when no event follows the
 * last one returned. A missing session has no events.
 */
export const after = internalQuery({
  args: { sessionId: v.string(), after: v.number(), limit: v.number() },
  returns: v.object({ events: v.array(event), isDone: v.boolean() }),
  handler: async (ctx, { sessionId, after, limit }) => {
    const size = pageSize(limit);
    const page = [];
    let bytes = 0;
    let isDone = true;
    const query = ctx.db
      .query("agentRuntimeEvents")
      .withIndex("by_sessionId_seq", (q) => q.eq("sessionId", sessionId).gt("seq", after));
    for await (const doc of query) {
      if (page.length === size || (page.length > 0 && bytes + doc.data.length > PAGE_BYTES)) {
        isDone = false;
        break;
      }
      bytes += doc.data.length;
      page.push({ seq: doc.seq, at: doc.at, type: doc.type, data: doc.data });
    }
    return { events: page, isDone };
  },
});
