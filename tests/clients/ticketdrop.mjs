// TicketDrop's research session over socket.io-client: create an `event-researcher`
// session for a market, run one turn that calls the runtime-served `fetch_events` tool
// and one that calls a stdio MCP server's `echo`, then stop it.
//
// Between the turns and the stop the script prints `{"live": "<session id>"}` and waits
// for a line on stdin, so the test can inspect the live sandbox. It returns the session
// id, every event of the session in seq order, the turns' results and the stop's ack.
//
// SCRIPT_ARGS: { marketKey, fetchArgs, echoMessage, turnTimeoutMs }

import assert from "node:assert/strict";
import { once } from "node:events";
import readline from "node:readline";
import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import { assertContiguous, scriptArgs, waitForResultAfter, waitForStatus } from "./checks.mjs";

runScript(async ({ url, token }) => {
  const { marketKey, fetchArgs, echoMessage, turnTimeoutMs = 60000 } = scriptArgs();
  const socket = await connect(url, { token });
  const events = collectEvents(socket);

  const created = await requestOk(
    socket,
    "session:create",
    { agentType: "event-researcher", metadata: { marketKey } },
    turnTimeoutMs,
  );
  const id = created.session.id;
  assert.deepEqual(created.session.metadata, { marketKey });
  await waitForStatus(events, id, "idle", 0, turnTimeoutMs);

  const turn = async (content) => {
    const sent = await requestOk(socket, "session:message", { sessionId: id, content });
    const result = await waitForResultAfter(events, id, sent.seq, turnTimeoutMs);
    await waitForStatus(events, id, "idle", result.seq, turnTimeoutMs);
    return result.data;
  };
  const fetched = await turn(`TOOL:mcp__runtime__fetch_events ${JSON.stringify(fetchArgs)}`);
  const echoed = await turn(`TOOL:mcp__everything__echo ${JSON.stringify({ message: echoMessage })}`);

  // Hand the live session to the test, and go on when it says so.
  const lines = readline.createInterface({ input: process.stdin });
  process.stdout.write(`${JSON.stringify({ live: id })}\n`);
  // A closed stdin (the test gave up) also goes on, so the session is still stopped.
  await Promise.race([once(lines, "line"), once(lines, "close")]);
  lines.close();

  const stopped = await requestOk(socket, "session:stop", { sessionId: id }, turnTimeoutMs);
  await waitForStatus(events, id, "stopped", 0, turnTimeoutMs);
  socket.close();

  const streamed = events.bySeq(id);
  assertContiguous(streamed);
  return { sessionId: id, results: [fetched, echoed], stopped: stopped.session, events: streamed };
});
