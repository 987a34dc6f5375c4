// Drives the runtime through the TypeScript SDK (clients/typescript, built to dist/).
// SCRIPT_ARGS = { scenario, transport, token? }; prints progress lines and, last, one
// JSON line for the Rust test. Scenarios:
// - "tour": every request, a streamed turn cut mid-stream by a forced disconnect of the
//   Engine.IO transport (socket.io-client reconnects, the SDK re-joins after its last
//   seq), approvals and a question answered through the helpers, typed errors, a fork
//   of the idle session followed from its seq 1, and a fork refused while a turn runs.
// - "restart": a long turn streams; the script prints `restart` and the test restarts
//   the runtime on the same port and store; the SDK reconnects (Socket.IO, or the SSE
//   stream after its last seq), the session is resumed and runs another turn.
// Both report every seq the caller saw, so the test can check each came once, in order.

import assert from "node:assert/strict";

import { AgentRuntimeError, allow, answers, connect, deny } from "../../clients/typescript/dist/index.js";

const args = JSON.parse(process.env.SCRIPT_ARGS ?? "{}");
const url = process.env.RUNTIME_URL;

/** Every event the caller was handed, by session, checked for order on arrival. */
function record(session) {
  const seen = [];
  session.onEvent((event) => {
    assert.equal(event.sessionId, session.id);
    const expected = (seen.at(-1)?.seq ?? 0) + 1;
    assert.equal(event.seq, expected, `seq ${event.seq} after ${expected - 1}`);
    seen.push(event);
  });
  return seen;
}

const isIdle = (e) => e.type === "status" && e.data.status === "idle";
const isStatus = (status) => (e) => e.type === "status" && e.data.status === status;

/** What a client with a wrong token gets: the error code of its first request. */
async function refusal() {
  try {
    const refused = await connect(url, { token: "wrong", transport: args.transport ?? "socketio" });
    await refused.profiles();
    refused.close();
    return "accepted";
  } catch (error) {
    assert.ok(error instanceof AgentRuntimeError, String(error));
    return error.code;
  }
}

async function tour(client) {
  const refused = await refusal();
  const profiles = await client.profiles();
  assert.ok(profiles.some((p) => p.name === "tester"));

  // A streamed turn, cut mid-stream.
  const session = await client.create({ agentType: "tester", metadata: { topic: "sdk" } });
  // The first listener gets the events from seq 1; an iterator, those from then on.
  const seen = record(session);
  const iterated = [];
  const iterating = (async () => {
    for await (const event of session.events()) {
      iterated.push(event.seq);
      if (event.type === "agent" && event.data.type === "result" && event.data.result === "stamp 300") return;
    }
  })();
  let reconnects = 0;
  client.onReconnect(() => (reconnects += 1));
  const sent = await session.send("stamp 300 5");
  const beforeCut = await session.next((e) => e.type === "agent" && e.seq > sent.seq + 20, sent.seq);
  // A network failure under socket.io-client (over REST, the restart scenario breaks
  // the SSE stream instead).
  if (client.transport.kind === "socketio") client.transport.socket.io.engine.close();
  const result = await session.result(sent.seq);
  assert.equal(result.data.result, "stamp 300");
  await session.next(isIdle, result.seq);
  await iterating;
  if (client.transport.kind === "socketio") assert.ok(reconnects >= 1, "the client reconnected");

  // Requests, typed answers and typed errors.
  const sessions = (await client.list({ agentType: "tester" })).sessions;
  assert.ok(sessions.some((s) => s.id === session.id));
  const written = await session.turn("write notes.md hello");
  assert.equal(written.data.type, "result");
  const files = await session.files();
  assert.deepEqual(files.map((f) => f.path).sort(), ["CLAUDE.md", "notes.md"]);
  assert.equal(new TextDecoder().decode(await session.download("notes.md")), "hello");
  await session.interrupt();
  const stopped = await session.stop();
  assert.equal(stopped.status, "stopped");
  const resumed = await session.resume();
  assert.equal(resumed.status, "idle");
  const history = await session.turn("history");
  const missing = await client.get("no-such-session").catch((error) => error);
  assert.ok(missing instanceof AgentRuntimeError);
  assert.equal(missing.code, "not_found");
  const budget = await session.setBudget({ maxTurns: 3 }).catch((error) => error);
  assert.equal(budget.code, "forbidden");

  // A fork of the idle session: it names the source's last seq, is followed from seq 1,
  // and is refused while its own turn runs.
  await session.next(isIdle, history.seq);
  const fork = await session.fork();
  const forkSeen = record(fork);
  assert.notEqual(fork.id, session.id);
  assert.deepEqual(fork.record.forkedFrom, { sessionId: session.id, seq: seen.at(-1).seq });
  assert.equal(fork.record.status, "idle");
  const forkSent = await fork.send("stamp 300 5");
  await fork.next((e) => e.type === "agent", forkSent.seq);
  const busy = await fork.fork().catch((error) => error);
  assert.ok(busy instanceof AgentRuntimeError, String(busy));
  assert.equal(busy.code, "session_busy");
  const forkResult = await fork.result(forkSent.seq);
  assert.equal(forkResult.data.result, "stamp 300");
  await fork.next(isIdle, forkResult.seq);
  assert.equal(forkSeen[0].seq, 1);

  // A tool call allowed, one denied, a question answered: through the helpers.
  const asker = await client.create({ agentType: "asker" });
  const askerSeen = record(asker);
  const asked = [];
  asker.onPermission(async (request) => {
    asked.push(request.tool);
    return request.input.file_path === "no.txt" ? deny("not that one") : allow();
  });
  asker.onQuestion(async (request) => answers({ [request.questions[0].question]: "Blue" }));
  const allowed = await asker.turn('ask Write {"file_path":"yes.txt","content":"ok"}');
  const denied = await asker.turn('ask Write {"file_path":"no.txt","content":"no"}');
  const question = { question: "Which colour?", header: "Colour", multiSelect: false, options: [] };
  const answered = await asker.turn(`ask AskUserQuestion ${JSON.stringify({ questions: [question] })}`);
  const outcomes = askerSeen.filter((e) => e.type === "answer").map((e) => [e.data.outcome, e.data.by]);

  const other = await client.create({ agentType: "tester" });
  await other.delete();
  const gone = await client.get(other.id).catch((error) => error);
  assert.equal(gone.code, "not_found");

  return {
    refused,
    sessionId: session.id,
    askerId: asker.id,
    seqs: seen.map((e) => e.seq),
    iterated,
    cutAfter: beforeCut.seq,
    resultSeq: result.seq,
    reconnects,
    history: history.data.result,
    asked,
    allowed: allowed.data.result,
    denied: denied.data.result,
    answered: answered.data.result,
    outcomes,
    askerSeqs: askerSeen.map((e) => e.seq),
    forkId: fork.id,
    forkedFrom: fork.record.forkedFrom,
    forkStatuses: forkSeen.filter((e) => e.type === "status").map((e) => e.data.status),
    forkSeqs: forkSeen.map((e) => e.seq),
    busy: busy.code,
  };
}

async function restart(client) {
  const session = await client.create({ agentType: "tester" });
  const seen = record(session);
  const sent = await session.send("stamp 2000 5");
  await session.next((e) => e.type === "agent" && e.seq > sent.seq + 20, sent.seq);
  console.log("restart");
  // The runtime stops the session on its way down; the SDK hears it after reconnecting.
  await session.next(isStatus("stopped"), sent.seq);
  const resumed = await session.resume();
  assert.equal(resumed.status, "idle");
  const after = await session.turn("reply after the restart");
  assert.equal(after.data.result, "after the restart");
  await session.next(isIdle, after.seq);
  return { sessionId: session.id, seqs: seen.map((e) => e.seq), stoppedMidTurn: seen.some((e) => e.type === "agent" && e.seq > sent.seq) };
}

const timer = setTimeout(() => {
  console.error("the scenario timed out");
  process.exit(1);
}, Number(process.env.SCRIPT_TIMEOUT_MS ?? 60000));

try {
  const client = await connect(url, {
    token: args.token,
    transport: args.transport ?? "socketio",
    reconnectDelayMs: 200,
    onError: (error) => console.error("sdk:", error?.message ?? error),
  });
  const summary = await (args.scenario === "restart" ? restart : tour)(client);
  client.close();
  clearTimeout(timer);
  console.log(JSON.stringify(summary));
} catch (error) {
  console.error(error?.stack ?? error);
  process.exit(1);
}
