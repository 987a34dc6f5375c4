// `[sessions] max_sessions = 1`: a second live session is refused with
// `capacity_exceeded`, on create and on resume; a stopped one frees the place.

import assert from "node:assert/strict";
import { connect, request, requestOk, runScript } from "./client.mjs";
import { assertError } from "./checks.mjs";

runScript(async ({ url }) => {
  const socket = await connect(url);
  const first = await requestOk(socket, "session:create", { agentType: "tester" });
  const full = assertError(
    await request(socket, "session:create", { agentType: "tester" }),
    "capacity_exceeded",
  );
  await requestOk(socket, "session:stop", { sessionId: first.session.id }, 15000);
  const second = await requestOk(socket, "session:create", { agentType: "tester" });
  const resumeRefused = assertError(
    await request(socket, "session:resume", { sessionId: first.session.id }),
    "capacity_exceeded",
  );
  const stillStopped = await requestOk(socket, "session:get", { sessionId: first.session.id });
  assert.equal(stillStopped.session.status, "stopped");
  await requestOk(socket, "session:delete", { sessionId: second.session.id });
  const resumed = await requestOk(socket, "session:resume", { sessionId: first.session.id }, 15000);
  assert.equal(resumed.session.status, "idle");
  socket.close();
  return { create: full, resume: resumeRefused };
});
