// The tables agent-runtime's Convex adapters use. An application spreads
// `agentRuntimeTables` into its own `defineSchema({...})`; the names carry an
// `agentRuntime` prefix so they cannot clash with the application's tables.
//
// Encoding (shared with the Rust adapter):
// - seq, version, token counts and sizes are float64 numbers; the runtime keeps them
//   below 2^53, so they round-trip exactly.
// - Session timestamps are RFC 3339 strings, stored as the runtime wrote them, so they
//   round-trip to the nanosecond; blob times are milliseconds since the epoch.
// - Session metadata and event data are JSON text: stored verbatim, free of Convex's
//   field-name and nesting rules, and never reparsed.
import { defineTable } from "convex/server";
import { v } from "convex/values";

/** A session's status, as the runtime names it. */
export const sessionStatus = v.union(
  v.literal("starting"),
  v.literal("idle"),
  v.literal("running"),
  v.literal("waiting"),
  v.literal("stopping"),
  v.literal("stopped"),
  v.literal("failed"),
);

/** Tokens and cost of a session. */
export const usage = v.object({
  inputTokens: v.number(),
  outputTokens: v.number(),
  costUsd: v.number(),
  turns: v.number(),
});

/**
 * The most a session may use; each limit `null` when unlimited. Optional in the record
 * so that sessions stored before budgets existed still validate (they are unlimited).
 */
export const budget = v.object({
  maxCostUsd: v.union(v.number(), v.null()),
  maxTokens: v.union(v.number(), v.null()),
  maxTurns: v.union(v.number(), v.null()),
});

/**
 * Where a forked session came from; `null` for a created session. Optional in the record
 * so that sessions stored before forks existed still validate.
 */
export const forkedFrom = v.object({
  sessionId: v.string(),
  seq: v.number(),
  agentSessionId: v.union(v.string(), v.null()),
});

/** A session record as the adapter sends and receives it (also the stored document). */
export const sessionFields = {
  sessionId: v.string(),
  owner: v.string(),
  agentType: v.string(),
  status: sessionStatus,
  metadata: v.string(),
  createdAt: v.string(),
  updatedAt: v.string(),
  lastActivityAt: v.string(),
  lastSeq: v.number(),
  agentSessionId: v.union(v.string(), v.null()),
  usage,
  budget: v.optional(budget),
  forkedFrom: v.optional(v.union(forkedFrom, v.null())),
  error: v.union(v.object({ code: v.string(), message: v.string() }), v.null()),
  version: v.number(),
};
export const sessionRecord = v.object(sessionFields);

/** One event of a session's log, without its session id. */
export const eventFields = {
  seq: v.number(),
  at: v.string(),
  type: v.string(),
  data: v.string(),
};
export const event = v.object(eventFields);

/** Limits of one API key that replace the configured defaults; null keeps the default. */
export const quotaOverrides = v.object({
  maxLiveSessions: v.union(v.number(), v.null()),
  maxStoredSessions: v.union(v.number(), v.null()),
  createsPerMinute: v.union(v.number(), v.null()),
  messagesPerMinute: v.union(v.number(), v.null()),
});

/** An API key: its name and the hex SHA-256 of the key, never the key itself. */
export const apiKeyFields = {
  name: v.string(),
  keyHash: v.string(),
  admin: v.boolean(),
  quotas: quotaOverrides,
  createdAt: v.string(),
};
export const apiKey = v.object(apiKeyFields);

/** One file of a profile, its bytes in standard padded base64. */
export const profileFile = v.object({
  path: v.string(),
  contentBase64: v.string(),
  executable: v.boolean(),
});

export const profileFields = {
  name: v.string(),
  manifest: v.string(),
  files: v.array(profileFile),
};
export const profile = v.object(profileFields);

export const agentRuntimeTables = {
  agentRuntimeSessions: defineTable(sessionFields)
    .index("by_sessionId", ["sessionId"])
    .index("by_owner_sessionId", ["owner", "sessionId"]),
  agentRuntimeEvents: defineTable({ sessionId: v.string(), ...eventFields }).index(
    "by_sessionId_seq",
    ["sessionId", "seq"],
  ),
  agentRuntimeBlobs: defineTable({
    key: v.string(),
    storageId: v.id("_storage"),
    size: v.number(),
    modifiedAt: v.number(),
  }).index("by_key", ["key"]),
  agentRuntimeProfiles: defineTable(profileFields).index("by_name", ["name"]),
  agentRuntimeApiKeys: defineTable(apiKeyFields)
    .index("by_name", ["name"])
    .index("by_keyHash", ["keyHash"]),
};
