// A person approves a tool call over Socket.IO, across a reconnect. SCRIPT_ARGS:
// `{ agentType, message, tool }` — the profile, a message that makes the agent call
// `tool` outside what the profile allows.
// The first socket creates the session, sends the message, hears the `permission` event
// and goes away without answering. A second socket joins: the session is `waiting` and
// its `pending` holds that event; it answers allow, hears the `answer` event and the
// turn's result; a second answer is refused with `request_closed`.

import assert from "node:assert/strict";
import { connect, collectEvents, request, requestOk, runScript } from "./client.mjs";
import { scriptArgs } from "./checks.mjs";

const TURN_MS = 45000;

runScript(async ({ url }) => {
  const { agentType, message, tool } = scriptArgs();
  const first = await connect(url);
  const heard = collectEvents(first);
  const { session } = await requestOk(first, "session:create", { agentType }, TURN_MS);
  await requestOk(first, "session:message", { sessionId: session.id, content: message });
  const asked = await heard
    .waitFor((e) => e.sessionId === session.id && e.type === "permission", TURN_MS)
    .catch((error) => {
      throw new Error(`${error.message}; heard: ${JSON.stringify(heard.all())}`);
    });
  assert.equal(asked.data.tool, tool);
  first.close();

  const second = await connect(url);
  const events = collectEvents(second);
  const joined = await requestOk(second, "session:join", { sessionId: session.id, afterSeq: 0 });
  assert.equal(joined.session.status, "waiting");
  assert.deepEqual(joined.session.pending, [asked], "the join shows the pending request");
  const replayed = joined.events.find((e) => e.type === "permission");
  assert.deepEqual(replayed, asked);

  const answered = await requestOk(second, "session:answer", {
    sessionId: session.id,
    requestId: asked.data.requestId,
    behavior: "allow",
  });
  const again = await request(second, "session:answer", {
    sessionId: session.id,
    requestId: asked.data.requestId,
    behavior: "deny",
  });
  assert.equal(again.ok, false);
  assert.equal(again.error.code, "request_closed");
  const answer = await events.waitFor((e) => e.seq === answered.seq, TURN_MS);
  const result = await events.waitFor(
    (e) => e.seq > answered.seq && e.type === "agent" && e.data.type === "result",
    TURN_MS,
  );
  await events.waitFor(
    (e) => e.seq > result.seq && e.type === "status" && e.data.status === "idle",
    TURN_MS,
  );
  const after = await requestOk(second, "session:get", { sessionId: session.id });
  second.close();
  return {
    sessionId: session.id,
    answer: answer.data,
    result: result.data.result,
    pendingAfter: after.session.pending,
  };
});
