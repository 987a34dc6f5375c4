// Two principals and an admin over Socket.IO. SCRIPT_ARGS:
// `{ a, b, admin, bOwner, refused: { name: token }, limited? }` — tokens of principal A,
// principal B (whose id is bOwner) and an admin; `refused` tokens must fail the handshake;
// `limited` (optional) may create one session a minute: its second create is refused.
// A and B each create a session and try every request on the other's: each is
// `not_found`. The admin lists and acts on both, forks A's session (the fork is A's)
// and creates one for B.

import assert from "node:assert/strict";
import { connect, request, requestOk, runScript } from "./client.mjs";
import { assertError, scriptArgs } from "./checks.mjs";

/** Every request about one session, with its payload. */
function attempts(sessionId) {
  return [
    ["session:get", { sessionId }],
    ["session:join", { sessionId, afterSeq: 0 }],
    ["session:message", { sessionId, content: "hello" }],
    ["session:answer", { sessionId, requestId: "r-1", behavior: "allow" }],
    ["session:budget", { sessionId, budget: { maxTurns: 1 } }],
    ["session:interrupt", { sessionId }],
    ["session:stop", { sessionId }],
    ["session:resume", { sessionId }],
    ["session:fork", { sessionId }],
    ["session:files", { sessionId }],
    ["session:delete", { sessionId }],
  ];
}

async function foreignAttempts(socket, sessionId) {
  const codes = {};
  for (const [event, payload] of attempts(sessionId)) {
    const ack = await request(socket, event, payload);
    codes[event] = assertError(ack, "not_found").code;
  }
  const listed = await requestOk(socket, "session:list", {});
  assert.ok(!listed.sessions.some((s) => s.id === sessionId), "another's session is not listed");
  return codes;
}

runScript(async ({ url }) => {
  const { a, b, admin, bOwner, refused, limited } = scriptArgs();
  const refusals = {};
  for (const [name, token] of Object.entries(refused)) {
    refusals[name] = await connect(url, { token }).then(
      (socket) => {
        socket.close();
        return "connected";
      },
      (error) => error.message,
    );
  }

  const [sa, sb, sadmin] = [await connect(url, { token: a }), await connect(url, { token: b }), await connect(url, { token: admin })];
  const idA = (await requestOk(sa, "session:create", { agentType: "tester" })).session.id;
  const idB = (await requestOk(sb, "session:create", { agentType: "tester" })).session.id;

  const aOnB = await foreignAttempts(sa, idB);
  const bOnA = await foreignAttempts(sb, idA);
  const notAdmin = assertError(
    await request(sa, "session:create", { agentType: "tester", owner: bOwner }),
    "invalid_request",
  ).message;

  // Only an admin sets a budget: its owner is refused, the admin's limits are kept.
  const ownBudget = assertError(
    await request(sa, "session:budget", { sessionId: idA, budget: { maxTurns: 1 } }),
    "forbidden",
  ).code;
  await requestOk(sadmin, "session:budget", { sessionId: idB, budget: { maxTurns: 3 } });
  const raisedBudget = (await requestOk(sb, "session:get", { sessionId: idB })).session.budget.maxTurns;

  const all = (await requestOk(sadmin, "session:list", {})).sessions.map((s) => s.id);
  assert.ok(all.includes(idA) && all.includes(idB), `admin lists both: ${all}`);
  await requestOk(sadmin, "session:get", { sessionId: idB });
  const joined = await requestOk(sadmin, "session:join", { sessionId: idA, afterSeq: 0 });
  assert.ok(joined.events.length > 0, "the admin reads another's log");
  const stopped = (await requestOk(sadmin, "session:stop", { sessionId: idA })).session.status;
  // An admin forks another's session: the fork is the owner's.
  const adminFork = (await requestOk(sadmin, "session:fork", { sessionId: idA }, 30000)).session;
  const aList = (await requestOk(sa, "session:list", {})).sessions;
  const forkOfA = aList.find((s) => s.id === adminFork.id)?.forkedFrom?.sessionId ?? null;
  await requestOk(sa, "session:delete", { sessionId: adminFork.id });
  const forB = (await requestOk(sadmin, "session:create", { agentType: "tester", owner: bOwner })).session.id;
  const bList = (await requestOk(sb, "session:list", {})).sessions.map((s) => s.id);
  assert.ok(bList.includes(forB), "the session made for B is B's");
  await requestOk(sb, "session:delete", { sessionId: forB });

  for (const socket of [sa, sb, sadmin]) socket.close();

  let rateLimited = null;
  if (limited !== undefined) {
    const socket = await connect(url, { token: limited });
    await requestOk(socket, "session:create", { agentType: "tester" });
    const ack = await request(socket, "session:create", { agentType: "tester" });
    assert.equal(ack.ok, false);
    assert.deepEqual(Object.keys(ack.error).sort(), ["code", "message", "retryAfter"]);
    rateLimited = ack.error;
    socket.close();
  }
  return { refusals, idA, idB, aOnB, bOnA, notAdmin, stopped, rateLimited, ownBudget, raisedBudget, forkOfA };
});
