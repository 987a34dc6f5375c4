// Messages sent while a turn runs are queued and run as the next turns, in order.
// SCRIPT_ARGS `{ pipelined: true }` emits all three at once instead of awaiting each ack.

import assert from "node:assert/strict";
import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import { assertContiguous, scriptArgs, waitForStatus } from "./checks.mjs";

const TEXTS = ["sleep 300", "reply second", "reply third"];

runScript(async ({ url }) => {
  const { pipelined = false } = scriptArgs();
  const socket = await connect(url);
  const events = collectEvents(socket);
  const { session } = await requestOk(socket, "session:create", { agentType: "tester" });
  const id = session.id;

  const send = (content) => requestOk(socket, "session:message", { sessionId: id, content });
  const acks = [];
  if (pipelined) {
    acks.push(...(await Promise.all(TEXTS.map(send))));
  } else {
    for (const text of TEXTS) acks.push(await send(text));
  }
  // The first turn sleeps until all three are queued, so the session goes idle only
  // once, after the third.
  const first = Math.min(...acks.map((a) => a.seq));
  const idle = await waitForStatus(events, id, "idle", first, 10000);
  const turns = events.forSession(id).filter((e) => e.seq >= first && e.seq <= idle.seq);
  const inputs = turns.filter((e) => e.type === "input").map((e) => e.data.content);
  const results = turns
    .filter((e) => e.type === "agent" && e.data.type === "result")
    .map((e) => e.data.result);
  const statuses = turns.filter((e) => e.type === "status").map((e) => e.data.status);
  assert.deepEqual(statuses, ["running", "idle"], "queued turns follow at once");
  assert.deepEqual(inputs, TEXTS, "inputs in send order");
  assert.deepEqual(results, ["slept", "second", "third"], "results in send order");
  assertContiguous(events.forSession(id));
  socket.close();
  return { sessionId: id, acks: acks.map((a) => a.seq), inputs, results };
});
