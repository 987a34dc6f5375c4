// Reconnect and replay: client A leaves the room while a long turn fills the log and
// catches up with `session:join { afterSeq }` (paging while hasMore); then it
// disconnects mid-stream, the turn goes on; client B joins with `afterSeq` where A
// stopped and then hears live events. A's events and B's, deduplicated by seq, are the
// whole log. Client C joins without `afterSeq` (no events, but the room), then leaves.
//
// The protocol lets a live stream skip events (a slow socket's buffer may overflow);
// a client then sees a gap in seq and fills it with `session:join { afterSeq }`. The
// clients here do the same, and report how many events they had to fill that way.

import assert from "node:assert/strict";
import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import { assertContiguous, assertEnvelope, waitForStatus } from "./checks.mjs";

/** Chunks of the turn that fills the log while nobody listens: over two pages. */
const FILL = 2100;
/** Chunks the agent streams in the turn A walks away from. */
const CHUNKS = 200;

/** Joins after `afterSeq` and pages while hasMore; returns the events and page count. */
async function joinAll(socket, sessionId, afterSeq) {
  const events = [];
  let after = afterSeq;
  let pages = 0;
  for (;;) {
    const page = await requestOk(socket, "session:join", { sessionId, afterSeq: after });
    pages += 1;
    assert.ok(page.events.length <= 1000, "a page holds at most 1000 events");
    assert.equal(page.session.id, sessionId);
    events.push(...page.events);
    if (!page.hasMore) return { events, pages };
    assert.ok(page.events.length > 0, "a page with hasMore is not empty");
    after = page.events.at(-1).seq;
  }
}

/**
 * A matching event: among `known` ones, heard live, or (if the live stream skipped it)
 * read from the log.
 */
async function find(socket, live, sessionId, predicate, known = []) {
  const found = known.find(predicate);
  if (found) return found;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const heard = await live
      .waitFor((e) => e.sessionId === sessionId && predicate(e), 1000)
      .catch(() => null);
    if (heard) return heard;
    const logged = (await joinAll(socket, sessionId, 0)).events.find(predicate);
    if (logged) return logged;
  }
  throw new Error("no matching event, live or in the log");
}

const isResult = (after) => (e) => e.seq > after && e.type === "agent" && e.data.type === "result";
const isIdle = (after) => (e) => e.seq > after && e.type === "status" && e.data.status === "idle";

runScript(async ({ url }) => {
  const a = await connect(url);
  const aEvents = collectEvents(a);
  const { session } = await requestOk(a, "session:create", { agentType: "tester" });
  const id = session.id;
  const first = await requestOk(a, "session:message", { sessionId: id, content: "reply first" });
  const firstIdle = await waitForStatus(aEvents, id, "idle", first.seq);

  // A long turn while A is out of the room, run over REST until its result.
  assert.deepEqual(await requestOk(a, "session:leave", { sessionId: id }), { ok: true });
  const fill = await fetch(`${url}/v1/sessions/${id}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content: `emit ${FILL}`, wait: true }),
  });
  assert.equal(fill.status, 200);
  assert.equal((await fill.json()).result.result, `chunk ${FILL}`);
  assert.equal(aEvents.forSession(id).at(-1).seq, firstIdle.seq, "A heard nothing meanwhile");
  const catchUp = await joinAll(a, id, firstIdle.seq);
  assert.ok(catchUp.pages >= 3, `A caught up in ${catchUp.pages} pages`);
  assertContiguous(catchUp.events, firstIdle.seq + 1);
  // The fill turn's closing `idle` may come after its result: it is live or in the log.
  const fillClosed = isIdle(catchUp.events.find(isResult(0)).seq);
  const fillIdle = await find(a, aEvents, id, fillClosed, catchUp.events);
  const seenBeforeStream = new Map(
    [...aEvents.forSession(id), ...catchUp.events].map((e) => [e.seq, e]),
  );

  const sent = await requestOk(a, "session:message", { sessionId: id, content: `emit ${CHUNKS}` });
  // Walk away as soon as the stream is under way.
  await aEvents.waitFor((e) => e.seq > sent.seq && e.type === "agent" && e.data.type === "assistant");
  a.disconnect();
  const seenByA = [...seenBeforeStream.values(), ...aEvents.forSession(id)]
    .filter((e, i, all) => all.findIndex((x) => x.seq === e.seq) === i)
    .sort((x, y) => x.seq - y.seq);
  // Where A's unbroken run from seq 1 ends: B goes on from there.
  let lastSeenByA = 0;
  for (const e of seenByA) {
    if (e.seq !== lastSeenByA + 1) break;
    lastSeenByA = e.seq;
  }

  // B joins where A stopped; live events may arrive before the join's ack.
  const b = await connect(url);
  const bLive = collectEvents(b);
  const replay = await joinAll(b, id, lastSeenByA);
  for (const envelope of replay.events) assertEnvelope(envelope, id);
  assertContiguous(replay.events, lastSeenByA + 1);
  const turnResult = await find(b, bLive, id, isResult(sent.seq), replay.events);
  assert.equal(turnResult.data.result, `chunk ${CHUNKS}`, "the turn went on without A");
  const turnIdle = await find(b, bLive, id, isIdle(turnResult.seq), replay.events);
  assert.ok(lastSeenByA < turnIdle.seq, "A left before the turn ended");

  // C joins without afterSeq: no events, but it is in the room from now on.
  const c = await connect(url);
  const cEvents = collectEvents(c);
  const joined = await requestOk(c, "session:join", { sessionId: id });
  assert.deepEqual(joined.events, []);
  assert.equal(joined.hasMore, false);
  assert.equal(joined.session.status, "idle");

  // A new turn reaches B and C live.
  const next = await requestOk(b, "session:message", { sessionId: id, content: "reply after the join" });
  const nextResult = await find(b, bLive, id, isResult(next.seq));
  assert.equal(nextResult.data.result, "after the join");
  const nextIdle = await waitForStatus(cEvents, id, "idle", nextResult.seq);
  assert.equal(cEvents.forSession(id)[0].seq, next.seq, "C heard nothing from before its join");
  assertContiguous(cEvents.forSession(id), next.seq);

  // C leaves: the next turn reaches B only.
  assert.deepEqual(await requestOk(c, "session:leave", { sessionId: id }), { ok: true });
  const third = await requestOk(b, "session:message", { sessionId: id, content: "reply third" });
  const thirdResult = await find(b, bLive, id, isResult(third.seq));
  const finalIdle = await find(b, bLive, id, isIdle(thirdResult.seq));
  // An ack on C's connection comes after anything the server sent C before it.
  await requestOk(c, "session:get", { sessionId: id });
  assert.equal(cEvents.forSession(id).at(-1).seq, nextIdle.seq, "C heard nothing after leaving");

  // A's events plus B's replay and live events, deduplicated by seq.
  const union = new Map();
  for (const e of [...seenByA, ...replay.events, ...bLive.forSession(id)]) {
    if (union.has(e.seq)) {
      assert.deepEqual(union.get(e.seq), e, `seq ${e.seq} arrived twice with different content`);
    }
    union.set(e.seq, e);
  }
  // Fill what the live streams skipped, as a client does on seeing a gap.
  let gapsFilled = 0;
  for (let seq = 1; seq <= finalIdle.seq; seq++) {
    if (union.has(seq)) continue;
    const page = await requestOk(b, "session:join", { sessionId: id, afterSeq: seq - 1 });
    for (const e of page.events.filter((e) => !union.has(e.seq))) {
      union.set(e.seq, e);
      gapsFilled += 1;
    }
  }
  const merged = [...union.values()].sort((x, y) => x.seq - y.seq);
  assertContiguous(merged);
  assert.equal(merged.at(-1).seq, finalIdle.seq);

  // The whole log again from a fresh join: several pages, the same events.
  const full = await joinAll(c, id, 0);
  assert.ok(full.pages >= 3, `paged ${full.pages} times`);
  assert.deepEqual(full.events, merged);

  b.close();
  c.close();
  return {
    sessionId: id,
    lastSeenByA,
    replayed: replay.events.length,
    replayPages: replay.pages,
    fullPages: full.pages,
    catchUpPages: catchUp.pages,
    fillIdle: fillIdle.seq,
    gapsFilled,
    events: merged,
  };
});
