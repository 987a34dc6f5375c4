// Several clients, each with a session whose agent streams SCRIPT_ARGS `chunks` lines
// as fast as it can, while the client keeps making requests. Every event must arrive
// live without a gap, and every request must get its ack.
// SCRIPT_ARGS: `{ clients, chunks }`.

import assert from "node:assert/strict";
import { collectEvents, connect, request, requestOk, runScript } from "./client.mjs";
import { scriptArgs, waitForStatus } from "./checks.mjs";

/** One client's burst: returns the seqs it never heard and the requests never acked. */
async function burst(url, chunks) {
  const socket = await connect(url);
  const events = collectEvents(socket);
  const { session } = await requestOk(socket, "session:create", { agentType: "tester" });
  const sessionId = session.id;
  const sent = await requestOk(socket, "session:message", {
    sessionId,
    content: `emit ${chunks}`,
  });
  let unanswered = 0;
  for (let i = 0; i < 20; i++) {
    await request(socket, "session:get", { sessionId }, 3000).catch(() => {
      unanswered += 1;
    });
  }
  const idle = await waitForStatus(events, sessionId, "idle", sent.seq, 30000).catch(
    () => null,
  );
  const last = idle?.seq ?? (await requestOk(socket, "session:get", { sessionId })).session.lastSeq;
  const seqs = new Set(events.forSession(sessionId).map((e) => e.seq));
  let missing = 0;
  for (let seq = 1; seq <= last; seq++) if (!seqs.has(seq)) missing += 1;
  socket.close();
  return { events: last, missing, unanswered };
}

runScript(async ({ url }) => {
  const { clients = 4, chunks = 5000 } = scriptArgs();
  const runs = await Promise.all(Array.from({ length: clients }, () => burst(url, chunks)));
  const missing = runs.reduce((n, r) => n + r.missing, 0);
  const unanswered = runs.reduce((n, r) => n + r.unanswered, 0);
  assert.deepEqual({ missing, unanswered }, { missing: 0, unanswered: 0 }, JSON.stringify(runs));
  return runs;
});
