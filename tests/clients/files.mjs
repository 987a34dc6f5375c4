// A file the agent writes: a `file` event, `session:files`, and the stored bytes after
// stop (the Rust side reads them over REST).

import assert from "node:assert/strict";
import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import { assertEnvelope, assertSession, waitForResultAfter, waitForStatus } from "./checks.mjs";

runScript(async ({ url }) => {
  const socket = await connect(url);
  const events = collectEvents(socket);
  const { session } = await requestOk(socket, "session:create", { agentType: "tester" });
  const id = session.id;

  const sent = await requestOk(socket, "session:message", {
    sessionId: id,
    content: "write notes.md hi",
  });
  const result = await waitForResultAfter(events, id, sent.seq);
  assert.equal(result.data.result, "wrote notes.md");
  const file = await events.waitFor((e) => e.sessionId === id && e.type === "file");
  assertEnvelope(file, id);
  assert.deepEqual(file.data, { path: "notes.md", change: "created", size: 2 });
  // The file event belongs to the turn: after its result, before it goes idle.
  const idle = await waitForStatus(events, id, "idle", sent.seq);
  assert.ok(result.seq < file.seq && file.seq < idle.seq, "result < file < idle");

  const listed = await requestOk(socket, "session:files", { sessionId: id });
  assert.deepEqual(Object.keys(listed).sort(), ["files", "ok"]);
  // The profile's CLAUDE.md is in the workspace too.
  assert.deepEqual(listed.files.map((f) => f.path).sort(), ["CLAUDE.md", "notes.md"]);
  const entry = listed.files.find((f) => f.path === "notes.md");
  assert.deepEqual(Object.keys(entry).sort(), ["modifiedAt", "path", "size"]);
  assert.equal(entry.path, "notes.md");
  assert.equal(entry.size, 2);
  assert.match(entry.modifiedAt, /Z$/);

  const stopped = await requestOk(socket, "session:stop", { sessionId: id }, 15000);
  assertSession(stopped.session, "stopped");
  // A stopped session lists its files from storage.
  const stored = await requestOk(socket, "session:files", { sessionId: id });
  const storedEntry = stored.files.find((f) => f.path === "notes.md");
  assert.equal(storedEntry?.size, 2, JSON.stringify(stored));
  socket.close();
  return { sessionId: id, file: file.data, files: listed.files };
});
