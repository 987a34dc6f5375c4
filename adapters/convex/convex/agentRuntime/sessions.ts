// Session records, with the semantics of the runtime's SessionStore contract.
import { v } from "convex/values";
import type { Doc } from "./docs";
import { fail, internalMutation, internalQuery, MAX_PAGE, pageSize } from "./server";
import { sessionRecord, sessionStatus } from "./tables";

/** The stored document without Convex's system fields. */
function record(doc: Doc<"agentRuntimeSessions">) {
  const { _id, _creationTime, ...fields } = doc;
  void _id;
  void _creationTime;
  return fields;
}

/** Stores a new record at version 1; an existing id is a CONFLICT. */
export const create = internalMutation({
  args: { record: sessionRecord },
  returns: v.null(),
  handler: async (ctx, { record }) => {
    const existing = await ctx.db
      .query("agentRuntimeSessions")
      .withIndex("by_sessionId", (q) => q.eq("sessionId", record.sessionId))
      .unique();
    if (existing !== null) fail("CONFLICT", `session ${record.sessionId} already exists`);
    await ctx.db.insert("agentRuntimeSessions", { ...record, version: 1 });
    return null;
  },
});

/** The record with this id, or null. */
export const get = internalQuery({
  args: { sessionId: v.string() },
  returns: v.union(sessionRecord, v.null()),
  handler: async (ctx, { sessionId }) => {
    const doc = await ctx.db
      .query("agentRuntimeSessions")
      .withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId))
      .unique();
    return doc === null ? null : record(doc);
  },
});

/**
 * Replaces the record when the stored version equals `record.version`; returns the new
 * version. A missing record is NOT_FOUND, a stale version a CONFLICT.
 */
export const update = internalMutation({
  args: { record: sessionRecord },
  returns: v.number(),
  handler: async (ctx, { record }) => {
    const doc = await ctx.db
      .query("agentRuntimeSessions")
      .withIndex("by_sessionId", (q) => q.eq("sessionId", record.sessionId))
      .unique();
    if (doc === null) fail("NOT_FOUND", `session ${record.sessionId}`);
    if (doc.version !== record.version) {
      fail(
        "CONFLICT",
        `session ${record.sessionId} is at version ${doc.version}, not ${record.version}`,
      );
    }
    const version = record.version + 1;
    await ctx.db.replace("agentRuntimeSessions", doc._id, { ...record, version });
    return version;
  },
});

/**
 * One page of records ordered by id: those after `after` that match the filter (null
 * fields and an empty status list match everything). `nextCursor` is set exactly when
 * more matching records follow.
 */
export const list = internalQuery({
  args: {
    owner: v.union(v.string(), v.null()),
    agentType: v.union(v.string(), v.null()),
    statuses: v.array(sessionStatus),
    after: v.union(v.string(), v.null()),
    limit: v.number(),
  },
  returns: v.object({
    sessions: v.array(sessionRecord),
    nextCursor: v.union(v.string(), v.null()),
  }),
  handler: async (ctx, { owner, agentType, statuses, after, limit }) => {
    const size = pageSize(limit);
    const ordered =
      owner === null
        ? ctx.db
            .query("agentRuntimeSessions")
            .withIndex("by_sessionId", (q) => (after === null ? q : q.gt("sessionId", after)))
        : ctx.db
            .query("agentRuntimeSessions")
            .withIndex("by_owner_sessionId", (q) =>
              after === null ? q.eq("owner", owner) : q.eq("owner", owner).gt("sessionId", after),
            );
    const page = [];
    let more = false;
    for await (const doc of ordered) {
      if (agentType !== null && doc.agentType !== agentType) continue;
      if (statuses.length > 0 && !statuses.includes(doc.status)) continue;
      if (page.length === size) {
        more = true;
        break;
      }
      page.push(record(doc));
    }
    const nextCursor = more ? page[page.length - 1].sessionId : null;
    return { sessions: page, nextCursor };
  },
});

/**
 * Deletes up to a page of the session's events and, once none are left, the record.
 * Returns `done: true` when both are gone; the caller repeats until then. Deleting a
 * missing session is done at once.
 */
export const remove = internalMutation({
  args: { sessionId: v.string() },
  returns: v.object({ done: v.boolean() }),
  handler: async (ctx, { sessionId }) => {
    const events = await ctx.db
      .query("agentRuntimeEvents")
      .withIndex("by_sessionId_seq", (q) => q.eq("sessionId", sessionId))
      .take(MAX_PAGE + 1);
    for (const event of events.slice(0, MAX_PAGE)) {
      await ctx.db.delete("agentRuntimeEvents", event._id);
    }
    if (events.length > MAX_PAGE) return { done: false };
    const doc = await ctx.db
      .query("agentRuntimeSessions")
      .withIndex("by_sessionId", (q) => q.eq("sessionId", sessionId))
      .unique();
    if (doc !== null) await ctx.db.delete("agentRuntimeSessions", doc._id);
    return { done: true };
  },
});
