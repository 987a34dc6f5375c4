// A message of about 900 KiB goes through on every transport and comes back whole in
// its `input` event; a request over the 1 MiB limit drops that connection only.

import assert from "node:assert/strict";
import { collectEvents, connect, nextEvent, requestOk, runScript } from "./client.mjs";
import { waitForResultAfter } from "./checks.mjs";

/** Content of the big message: a directive and a long text that is easy to check. */
const BIG = `reply ${"0123456789abcdef".repeat((900 * 1024) / 16)}`;

/** Sends BIG over one transport choice and checks what comes back. */
async function roundTrip(url, transports) {
  const socket = await connect(url, { transports, timeoutMs: 10000 });
  const events = collectEvents(socket);
  const { session } = await requestOk(socket, "session:create", { agentType: "tester" });
  const sent = await requestOk(
    socket,
    "session:message",
    { sessionId: session.id, content: BIG },
    15000,
  );
  const input = await events.waitFor((e) => e.seq === sent.seq, 15000);
  assert.equal(input.type, "input");
  assert.equal(input.data.content.length, BIG.length);
  assert.equal(input.data.content, BIG);
  const result = await waitForResultAfter(events, session.id, sent.seq, 15000);
  assert.equal(result.data.result, BIG.slice("reply ".length));
  const transport = socket.io.engine.transport.name;
  socket.close();
  return { transport, inputSeq: sent.seq, bytes: input.data.content.length };
}

/** Sends a message over the limit; the connection drops, the server lives on. */
async function overLimit(url, transports) {
  const socket = await connect(url, { transports, timeoutMs: 10000 });
  const dropped = nextEvent(socket, "disconnect", 15000);
  socket.emit("session:message", { sessionId: "any", content: "y".repeat(1100 * 1024) });
  const reason = await dropped;
  socket.close();
  const again = await connect(url, { transports, timeoutMs: 15000 });
  await requestOk(again, "profile:list", {}, 15000).catch((error) => {
    throw new Error(`after the oversized request over ${transports}: ${error.message}`);
  });
  again.close();
  return reason;
}

runScript(async ({ url }) => {
  const defaults = await roundTrip(url, undefined);
  const polling = await roundTrip(url, ["polling"]);
  const websocket = await roundTrip(url, ["websocket"]);
  assert.equal(polling.transport, "polling");
  assert.equal(websocket.transport, "websocket");
  const overLimitReasons = {
    polling: await overLimit(url, ["polling"]),
    websocket: await overLimit(url, ["websocket"]),
  };
  return { defaults, polling, websocket, overLimitReasons };
});
