// Every refusal a client can cause over Socket.IO without special configuration, each
// checked for the exact `{ ok: false, error: { code, message } }` shape; and an error
// event for a failed request sent without an ack callback.

import assert from "node:assert/strict";
import { collectEvents, connect, nextEvent, request, requestOk, runScript } from "./client.mjs";
import { assertError, waitForStatus } from "./checks.mjs";

/** Sends `payload` with `event` and checks the refusal; returns its message. */
async function refused(socket, event, payload, code, messagePart) {
  const ack = await request(socket, event, payload);
  return assertError(ack, code, messagePart).message;
}

runScript(async ({ url }) => {
  const socket = await connect(url);
  const { session } = await requestOk(socket, "session:create", { agentType: "tester" });
  const id = session.id;
  const messages = {};
  const check = async (name, event, payload, code, part) => {
    messages[name] = await refused(socket, event, payload, code, part);
  };

  // invalid_request, naming the field.
  const notObject = "the payload must be a JSON object";
  await check("createString", "session:create", "tester", "invalid_request", notObject);
  await check("getArray", "session:get", [id], "invalid_request", notObject);
  await check("getNoPayload", "session:get", undefined, "invalid_request", notObject);
  await check("createNoAgentType", "session:create", {}, "invalid_request", "`agentType` is required");
  await check("getNoSessionId", "session:get", {}, "invalid_request", "`sessionId` is required");
  await check("messageNoSessionId", "session:message", { content: "hi" }, "invalid_request", "`sessionId`");
  await check("messageNoContent", "session:message", { sessionId: id }, "invalid_request", "`content` is required");
  await check("contentNumber", "session:message", { sessionId: id, content: 5 }, "invalid_request", "content");
  await check("contentEmpty", "session:message", { sessionId: id, content: "" }, "invalid_request", "content");
  await check("contentBadBlock", "session:message", { sessionId: id, content: [{ text: "x" }] }, "invalid_request", "content[0]");
  await check("afterSeqNegative", "session:join", { sessionId: id, afterSeq: -1 }, "invalid_request", "`afterSeq`");
  await check("afterSeqString", "session:join", { sessionId: id, afterSeq: "4" }, "invalid_request", "`afterSeq`");
  await check("afterSeqFraction", "session:join", { sessionId: id, afterSeq: 1.5 }, "invalid_request", "`afterSeq`");
  await check("sessionIdNumber", "session:stop", { sessionId: 7 }, "invalid_request", "`sessionId` must be a string");
  await check("badIdChars", "session:create", { agentType: "tester", sessionId: "../escape" }, "invalid_request", "sessionId");
  await check("badIdSlash", "session:create", { agentType: "tester", sessionId: "a/b" }, "invalid_request", "sessionId");
  await check("idTaken", "session:create", { agentType: "tester", sessionId: id }, "invalid_request", "already taken");
  await check("metadataArray", "session:create", { agentType: "tester", metadata: [1] }, "invalid_request", "`metadata`");
  await check("listLimitZero", "session:list", { limit: 0 }, "invalid_request", "`limit`");
  await check("listBadStatus", "session:list", { status: "sleeping" }, "invalid_request", "`status`");

  // The request is understood, but names what does not exist or does not fit.
  await check("unknownProfile", "session:create", { agentType: "no-such-profile" }, "profile_not_found");
  await check("metadataInvalid", "session:create", { agentType: "tester", metadata: { topic: 5 } }, "metadata_invalid");

  // not_found: an unknown id, for every request that names a session.
  for (const event of ["session:get", "session:join", "session:interrupt", "session:stop", "session:resume", "session:delete", "session:files"]) {
    await check(`unknown ${event}`, event, { sessionId: "no-such-session" }, "not_found");
  }
  await check("unknownMessage", "session:message", { sessionId: "no-such-session", content: "hi" }, "not_found");

  // ...and a deleted one.
  await requestOk(socket, "session:delete", { sessionId: id });
  for (const event of ["session:get", "session:join", "session:stop", "session:resume", "session:delete", "session:files"]) {
    await check(`deleted ${event}`, event, { sessionId: id }, "not_found");
  }
  await check("deletedMessage", "session:message", { sessionId: id, content: "hi" }, "not_found");
  const listed = await requestOk(socket, "session:list", {});
  assert.ok(!listed.sessions.some((s) => s.id === id), "a deleted session is not listed");

  // Without an ack callback the request still runs; its error arrives as an event.
  const pending = nextEvent(socket, "error");
  socket.emit("session:get", { sessionId: "no-such-session" });
  const errorEvent = await pending;
  assert.deepEqual(errorEvent, {
    event: "session:get",
    error: { code: "not_found", message: errorEvent.error.message },
  });
  const invalidPending = nextEvent(socket, "error");
  socket.emit("session:message", { content: "hi" });
  const invalidEvent = await invalidPending;
  assert.equal(invalidEvent.event, "session:message");
  assert.equal(invalidEvent.error.code, "invalid_request");

  // A successful request without an ack runs too: the socket hears the new session.
  const events = collectEvents(socket);
  socket.emit("session:create", { agentType: "tester" });
  const ready = await waitForStatus(events, undefined, "idle");
  const got = await requestOk(socket, "session:get", { sessionId: ready.sessionId });
  assert.equal(got.session.id, ready.sessionId);

  socket.close();
  return { messages, errorEvent, createdWithoutAck: got.session.id };
});
