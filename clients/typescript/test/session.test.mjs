// The SDK's ordering guarantees, driven through a transport that hands events over in
// the worst orders a network and a replay can produce: duplicates, gaps, a replay
// overlapping live events, a reconnect. `node --test test/` (after `npm run build`).

import assert from "node:assert/strict";
import { test } from "node:test";

import { AgentRuntimeClient, allow } from "../dist/index.js";

const ID = "s1";

function envelope(seq, type = "agent", data = { type: "assistant", n: seq }) {
  return { sessionId: ID, seq, at: "2026-01-01T00:00:00.000Z", type, data };
}

/** A transport over an in-memory log; `live` hands envelopes to the client as given. */
function harness(log) {
  const client = new AgentRuntimeClient({ onError: (error) => assert.fail(String(error)) });
  const answered = [];
  const transport = {
    kind: "socketio",
    pages: 0,
    async request(name, payload) {
      if (name === "session:create") return { session: record(0) };
      if (name === "session:answer") {
        answered.push(payload);
        return { seq: log.length + 1 };
      }
      throw new Error(`unexpected ${name}`);
    },
    async follow(sessionId, lastSeq) {
      for (const e of log.filter((e) => e.seq > lastSeq())) client.sink.event(e);
      return record(log.length);
    },
    async unfollow() {},
    async page(sessionId, afterSeq) {
      transport.pages += 1;
      const events = log.filter((e) => e.seq > afterSeq).slice(0, 2);
      return { events, hasMore: log.some((e) => e.seq > afterSeq + 2) };
    },
    async download() {
      return new Uint8Array();
    },
    close() {},
  };
  client.transport = transport;
  return { client, transport, answered, live: (...seqs) => seqs.forEach((seq) => client.sink.event(log[seq - 1])) };
}

function record(lastSeq) {
  return { id: ID, agentType: "t", status: "idle", lastSeq, pending: [] };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

test("duplicates are dropped and gaps filled from the log, in seq order", async () => {
  const log = Array.from({ length: 9 }, (_, i) => envelope(i + 1));
  const { client, transport } = harness([]);
  const session = await client.create({ agentType: "t" });
  const seen = [];
  session.onEvent((e) => seen.push(e.seq));
  // The log grows; the client hears 1, 2 twice, then 6 (a gap), 3, 9, 4.
  transport.page = async (_, afterSeq) => {
    const events = log.filter((e) => e.seq > afterSeq && e.seq <= 8).slice(0, 2);
    return { events, hasMore: events.length === 2 && events.at(-1).seq < 8 };
  };
  const hear = (...seqs) => seqs.forEach((seq) => client.sink.event(log[seq - 1]));
  hear(1, 2, 2, 1, 6, 3, 9, 4);
  await settle();
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("a reconnect re-joins after the last seq and hands over only what is new", async () => {
  const log = Array.from({ length: 6 }, (_, i) => envelope(i + 1));
  const { client, live } = harness(log);
  const session = await client.create({ agentType: "t" });
  const seen = [];
  const iterated = [];
  session.onEvent((e) => seen.push(e.seq));
  const iterating = (async () => {
    for await (const e of session) {
      iterated.push(e.seq);
      if (e.seq === 8) return;
    }
  })();
  live(1, 2, 3);
  log.push(envelope(7), envelope(8));
  client.sink.reconnected();
  await settle();
  live(7, 8);
  await iterating;
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(iterated, [1, 2, 3, 4, 5, 6, 7, 8].filter((seq) => seq >= iterated[0]));
});

test("a permission handler answers each open request once, and none answered already", async () => {
  const ask = (seq, requestId) => envelope(seq, "permission", { requestId, tool: "Write", input: {}, expiresAt: "x" });
  const log = [
    envelope(1),
    ask(2, "r1"),
    envelope(3, "answer", { requestId: "r1", outcome: "allow" }),
    ask(4, "r2"),
  ];
  const { client, answered, live } = harness(log);
  const session = await client.create({ agentType: "t" });
  const asked = [];
  session.onPermission(async (request) => {
    asked.push(request.requestId);
    return allow();
  });
  await settle();
  live(4, 2, 4);
  await settle();
  assert.deepEqual(asked, ["r2"]);
  assert.deepEqual(answered.map((a) => [a.requestId, a.behavior]), [["r2", "allow"]]);
  assert.deepEqual(session.pending().map((e) => e.seq), [4]);
});
