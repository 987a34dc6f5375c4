// A session's whole life over socket.io-client: create, a turn streamed as envelopes,
// an interrupt mid-turn, stop, resume with the earlier context, delete.

import assert from "node:assert/strict";
import { collectEvents, connect, request, requestOk, runScript } from "./client.mjs";
import {
  assertContiguous,
  assertEnvelope,
  assertError,
  assertSession,
  waitForResultAfter,
  waitForStatus,
} from "./checks.mjs";

runScript(async ({ url }) => {
  const socket = await connect(url);
  const events = collectEvents(socket);

  const created = await requestOk(socket, "session:create", {
    agentType: "tester",
    metadata: { topic: "lifecycle" },
  });
  assert.deepEqual(Object.keys(created).sort(), ["ok", "session"]);
  assertSession(created.session, "idle");
  assert.equal(created.session.agentType, "tester");
  assert.deepEqual(created.session.metadata, { topic: "lifecycle" });
  assert.equal(created.session.error, null);
  const id = created.session.id;

  // The socket was in the room before the session started: it saw seq 1 onwards.
  await waitForStatus(events, id, "idle");
  assert.deepEqual(
    events.forSession(id).map((e) => [e.seq, e.type, e.data.status]),
    [
      [1, "status", "starting"],
      [2, "status", "idle"],
    ],
  );

  // One turn, streamed in seq order.
  const sent = await requestOk(socket, "session:message", {
    sessionId: id,
    content: "reply hello there",
    messageId: "m-1",
  });
  assert.deepEqual(Object.keys(sent).sort(), ["messageId", "ok", "seq"]);
  assert.equal(sent.messageId, "m-1");
  assert.equal(sent.seq, 3);
  const result = await waitForResultAfter(events, id, sent.seq);
  assert.equal(result.data.subtype, "success");
  assert.equal(result.data.result, "hello there");
  const idle = await waitForStatus(events, id, "idle", result.seq);
  const turn = events.forSession(id).filter((e) => e.seq >= sent.seq && e.seq <= idle.seq);
  const kinds = turn.map((e) =>
    e.type === "agent" ? `agent:${e.data.type}` : e.type === "status" ? `status:${e.data.status}` : e.type,
  );
  assert.deepEqual(kinds, [
    "input",
    "status:running",
    "agent:system",
    "agent:assistant",
    "agent:result",
    "status:idle",
  ]);
  assert.deepEqual(turn[0].data, { messageId: "m-1", content: "reply hello there" });
  assert.equal(turn[3].data.message.content[0].text, "hello there");

  // An interrupt once the agent has started the turn ends it as an error result.
  const slow = await requestOk(socket, "session:message", { sessionId: id, content: "sleep 20000" });
  await events.waitFor(
    (e) => e.seq > slow.seq && e.type === "agent" && e.data.type === "system" && e.data.subtype === "init",
  );
  const interrupted = await requestOk(socket, "session:interrupt", { sessionId: id });
  assert.deepEqual(interrupted, { ok: true });
  const aborted = await waitForResultAfter(events, id, slow.seq);
  assert.equal(aborted.data.subtype, "error_during_execution");
  assert.equal(aborted.data.is_error, true);
  await waitForStatus(events, id, "idle", aborted.seq);

  // Stop: the ack comes after the final sync; resume brings the conversation back.
  const stopped = await requestOk(socket, "session:stop", { sessionId: id }, 15000);
  assertSession(stopped.session, "stopped");
  const resumed = await requestOk(socket, "session:resume", { sessionId: id }, 15000);
  assertSession(resumed.session, "idle");
  const asked = await requestOk(socket, "session:message", { sessionId: id, content: "history" });
  const history = await waitForResultAfter(events, id, asked.seq);
  assert.equal(history.data.result, "reply hello there | sleep 20000");
  const finalIdle = await waitForStatus(events, id, "idle", history.seq);

  // Every event of the session reached this socket, in order, each a proper envelope.
  const all = events.forSession(id);
  for (const envelope of all) assertEnvelope(envelope, id);
  assertContiguous(all);
  assert.equal(all.at(-1).seq, finalIdle.seq);
  const got = await requestOk(socket, "session:get", { sessionId: id });
  assertSession(got.session, "idle");
  assert.equal(got.session.lastSeq, finalIdle.seq);
  assert.equal(got.session.usage.turns, 3);

  assert.deepEqual(await requestOk(socket, "session:delete", { sessionId: id }), { ok: true });
  assertError(await request(socket, "session:get", { sessionId: id }), "not_found");
  socket.close();
  return {
    sessionId: id,
    lastSeq: finalIdle.seq,
    statuses: all.filter((e) => e.type === "status").map((e) => e.data.status),
    history: history.data.result,
    interruptedSubtype: aborted.data.subtype,
  };
});
