// Forks a session over Socket.IO: the ack is the fork's session object, the socket is in
// the fork's room and sees its events from seq 1, and the fork takes a message.
// SCRIPT_ARGS: `{ sessionId, content }`.

import assert from "node:assert/strict";
import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import {
  assertContiguous,
  assertSession,
  scriptArgs,
  waitForResultAfter,
  waitForStatus,
} from "./checks.mjs";

runScript(async ({ url, token }) => {
  const { sessionId, content } = scriptArgs();
  const socket = await connect(url, { token });
  const events = collectEvents(socket);
  const forked = await requestOk(socket, "session:fork", { sessionId }, 30000);
  const fork = forked.session;
  assertSession(fork, "idle");
  assert.notEqual(fork.id, sessionId);
  // Heard without a join: the socket was in the fork's room before it started.
  await waitForStatus(events, fork.id, "idle");
  const files = await requestOk(socket, "session:files", { sessionId: fork.id });
  const sent = await requestOk(socket, "session:message", { sessionId: fork.id, content });
  const result = await waitForResultAfter(events, fork.id, sent.seq, 30000);
  await waitForStatus(events, fork.id, "idle", result.seq);
  const heard = events.bySeq(fork.id);
  assertContiguous(heard);
  assert.equal(
    events.forSession(sessionId).length,
    0,
    "nothing of the source's reaches the fork's socket",
  );
  socket.close();
  return {
    fork,
    files: files.files.map((f) => f.path).sort(),
    result: result.data.result,
    statuses: heard.filter((e) => e.type === "status").map((e) => e.data.status),
  };
});
