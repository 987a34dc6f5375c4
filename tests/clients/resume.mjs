// After a restart: a session that was live is `stopped`, keeps its files, resumes, and
// its agent remembers the earlier turns. SCRIPT_ARGS: `{ sessionId }`.

import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import {
  assertContiguous,
  assertSession,
  scriptArgs,
  waitForResultAfter,
  waitForStatus,
} from "./checks.mjs";

runScript(async ({ url }) => {
  const { sessionId } = scriptArgs();
  const socket = await connect(url);
  const before = await requestOk(socket, "session:get", { sessionId });
  assertSession(before.session, "stopped");
  const files = await requestOk(socket, "session:files", { sessionId });

  const events = collectEvents(socket);
  const resumed = await requestOk(socket, "session:resume", { sessionId }, 15000);
  assertSession(resumed.session, "idle");
  await requestOk(socket, "session:join", { sessionId });
  const sent = await requestOk(socket, "session:message", { sessionId, content: "history" });
  const result = await waitForResultAfter(events, sessionId, sent.seq);
  await waitForStatus(events, sessionId, "idle", result.seq);
  // The log holds every event, before and after the restart, without a gap.
  const log = await requestOk(socket, "session:join", { sessionId, afterSeq: 0 });
  assertContiguous(log.events);
  socket.close();
  return {
    statusBefore: before.session.status,
    files: files.files.map((f) => f.path).sort(),
    history: result.data.result,
    statuses: log.events.filter((e) => e.type === "status").map((e) => e.data.status),
  };
});
