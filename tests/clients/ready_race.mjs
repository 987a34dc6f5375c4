// A session is usable as soon as its `idle` status event is out: a client that hears
// it (here: after a create sent without an ack) and asks at once gets status `idle`,
// and its message is accepted. Several clients repeat this at once, since the window
// between the event and the session's registration is short.
// SCRIPT_ARGS: `{ clients, rounds }`.

import assert from "node:assert/strict";
import { collectEvents, connect, request, runScript } from "./client.mjs";
import { scriptArgs, waitForStatus } from "./checks.mjs";

/** One client's rounds; counts what `session:get` and `session:message` answered. */
async function client(url, rounds, seen) {
  const socket = await connect(url);
  const events = collectEvents(socket);
  const count = (table, key) => {
    table[key] = (table[key] ?? 0) + 1;
  };
  const ids = new Set();
  for (let round = 0; round < rounds; round++) {
    socket.emit("session:create", { agentType: "tester" });
    const idle = await events.waitFor(
      (e) => !ids.has(e.sessionId) && e.type === "status" && e.data.status === "idle",
    );
    ids.add(idle.sessionId);
    const sessionId = idle.sessionId;
    const got = await request(socket, "session:get", { sessionId });
    count(seen.get, got.ok ? got.session.status : got.error.code);
    const sent = await request(socket, "session:message", { sessionId, content: "reply hi" });
    count(seen.message, sent.ok ? "ok" : sent.error.code);
    await waitForStatus(events, sessionId, "idle", idle.seq);
    await request(socket, "session:delete", { sessionId });
  }
  socket.close();
}

runScript(async ({ url }) => {
  const { clients = 6, rounds = 10 } = scriptArgs();
  const seen = { get: {}, message: {} };
  await Promise.all(Array.from({ length: clients }, () => client(url, rounds, seen)));
  const total = clients * rounds;
  assert.deepEqual(seen, { get: { idle: total }, message: { ok: total } });
  return seen;
});
