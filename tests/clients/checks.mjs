// Assertions shared by the scenario scripts: the protocol's envelope and ack shapes,
// seq order, and the script's arguments.

import assert from "node:assert/strict";

/** Types a `session:event` envelope may carry. */
const EVENT_TYPES = ["status", "input", "agent", "file", "error"];

/** RFC 3339 in UTC with a `Z`, as the protocol writes times. */
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** The JSON object the Rust test passed in SCRIPT_ARGS (`{}` when none). */
export function scriptArgs() {
  return JSON.parse(process.env.SCRIPT_ARGS ?? "{}");
}

/** Checks one envelope: exactly sessionId, seq, at, type, data. */
export function assertEnvelope(envelope, sessionId) {
  assert.deepEqual(
    Object.keys(envelope).sort(),
    ["at", "data", "seq", "sessionId", "type"],
    `envelope keys: ${JSON.stringify(envelope)}`,
  );
  assert.equal(envelope.sessionId, sessionId);
  assert.ok(Number.isInteger(envelope.seq) && envelope.seq >= 1, `seq: ${envelope.seq}`);
  assert.match(envelope.at, RFC3339_UTC);
  assert.ok(EVENT_TYPES.includes(envelope.type), `type: ${envelope.type}`);
  assert.equal(typeof envelope.data, "object");
  assert.notEqual(envelope.data, null);
}

/** Checks that `events` have seqs first, first+1, ... with no gap and no repeat. */
export function assertContiguous(events, first = 1) {
  const seqs = events.map((e) => e.seq);
  const expected = seqs.map((_, i) => first + i);
  assert.deepEqual(seqs, expected, "seqs are contiguous and in order");
}

/** Checks a refused ack: exactly `{ ok: false, error: { code, message } }`. */
export function assertError(ack, code, messagePart) {
  assert.deepEqual(Object.keys(ack).sort(), ["error", "ok"], JSON.stringify(ack));
  assert.equal(ack.ok, false);
  assert.deepEqual(Object.keys(ack.error).sort(), ["code", "message"]);
  assert.equal(ack.error.code, code, JSON.stringify(ack));
  assert.equal(typeof ack.error.message, "string");
  assert.ok(ack.error.message.length > 0, "the message is not empty");
  if (messagePart !== undefined) {
    assert.ok(
      ack.error.message.includes(messagePart),
      `${JSON.stringify(ack.error.message)} mentions ${JSON.stringify(messagePart)}`,
    );
  }
  return ack.error;
}

/** Checks the protocol's session object. */
export function assertSession(session, status) {
  assert.deepEqual(
    Object.keys(session).sort(),
    [
      "agentSessionId",
      "agentType",
      "budget",
      "createdAt",
      "error",
      "forkedFrom",
      "id",
      "lastActivityAt",
      "lastSeq",
      "metadata",
      "pending",
      "status",
      "updatedAt",
      "usage",
    ],
    JSON.stringify(session),
  );
  assert.deepEqual(Object.keys(session.usage).sort(), [
    "costUsd",
    "inputTokens",
    "outputTokens",
    "turns",
  ]);
  assert.deepEqual(Object.keys(session.budget).sort(), ["maxCostUsd", "maxTokens", "maxTurns"]);
  for (const [limit, value] of Object.entries(session.budget)) {
    assert.ok(value === null || (typeof value === "number" && value >= 0), `budget.${limit}: ${value}`);
  }
  if (session.forkedFrom !== null) {
    assert.deepEqual(Object.keys(session.forkedFrom).sort(), ["seq", "sessionId"]);
    assert.equal(typeof session.forkedFrom.sessionId, "string");
    assert.ok(Number.isInteger(session.forkedFrom.seq) && session.forkedFrom.seq >= 0);
  }
  assert.ok(Array.isArray(session.pending), "pending is a list");
  for (const field of ["createdAt", "updatedAt", "lastActivityAt"]) {
    assert.match(session[field], RFC3339_UTC, field);
  }
  if (status !== undefined) assert.equal(session.status, status, JSON.stringify(session));
}

/**
 * Waits for a `status` event of `status` with a seq above `after`, of session
 * `sessionId` (of any session when it is undefined).
 */
export function waitForStatus(events, sessionId, status, after = 0, timeoutMs) {
  return events.waitFor(
    (e) =>
      (sessionId === undefined || e.sessionId === sessionId) &&
      e.seq > after &&
      e.type === "status" &&
      e.data.status === status,
    timeoutMs,
  );
}

/** Waits for the `result` line of the turn whose input had seq `inputSeq`. */
export function waitForResultAfter(events, sessionId, inputSeq, timeoutMs) {
  return events.waitFor(
    (e) =>
      e.sessionId === sessionId &&
      e.seq > inputSeq &&
      e.type === "agent" &&
      e.data.type === "result",
    timeoutMs,
  );
}
