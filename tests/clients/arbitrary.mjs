// Arbitrary payloads for every request event, over one real connection: each ack is
// `{ ok: true, ... }` or a refusal with a documented code, and the connection survives
// all of them. Payloads come from a seeded generator, so a failure can be replayed.
// SCRIPT_ARGS: `{ seed, perEvent, codes }` (codes: the protocol's documented codes).

import assert from "node:assert/strict";
import { connect, request, runScript } from "./client.mjs";
import { scriptArgs } from "./checks.mjs";

const EVENTS = [
  "session:create", "session:message", "session:join", "session:leave",
  "session:answer", "session:budget", "session:interrupt", "session:stop", "session:resume", "session:fork", "session:delete",
  "session:get", "session:list", "session:files", "profile:list",
];

/** The protocol's field names, so that objects reach past "missing field". */
const FIELDS = [
  "agentType", "metadata", "sessionId", "message", "content", "messageId", "afterSeq",
  "status", "limit", "cursor", "type", "text", "source", "__proto__", "constructor",
  "requestId", "behavior", "input", "always", "answers", "budget", "maxCostUsd", "maxTokens",
  "maxTurns",
];

const STRINGS = [
  "", "nope", "..", "../x", "a/b", "idle", "text", "image", "\u0000", "é", "🦀",
  "x".repeat(300), "%2e%2e", "<script>", "null", "allow", "deny",
];

/** mulberry32: small, seeded, good enough to pick test inputs. */
function generator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function arbitrary(random, depth) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const kind = Math.floor(random() * (depth > 2 ? 6 : 8));
  switch (kind) {
    case 0: return null;
    case 1: return random() < 0.5;
    case 2: return pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, 1000, 7]);
    case 3: return pick(STRINGS);
    case 4: return String.fromCodePoint(...Array.from({ length: 6 }, () => Math.floor(random() * 0x2fff)));
    case 5: return undefined;
    case 6: return Array.from({ length: Math.floor(random() * 4) }, () => arbitrary(random, depth + 1));
    default: {
      // Often well-formed ids, so that requests get past parsing to the lookups.
      const object = random() < 0.6 ? { sessionId: pick(["nope", "a.b-1", "x_2"]), agentType: pick(["nope", "x"]) } : {};
      for (let i = Math.floor(random() * 5); i > 0; i--) {
        object[pick(FIELDS)] = arbitrary(random, depth + 1);
      }
      return object;
    }
  }
}

runScript(async ({ url }) => {
  const { seed, perEvent, codes } = scriptArgs();
  const random = generator(seed);
  const socket = await connect(url);
  const seen = {};
  let sent = 0;
  for (const event of EVENTS) {
    for (let i = 0; i < perEvent; i++) {
      const payload = arbitrary(random, 0);
      const ack = await request(socket, event, payload);
      const where = `${event} ${JSON.stringify(payload)} → ${JSON.stringify(ack)}`;
      assert.equal(typeof ack, "object", where);
      assert.notEqual(ack, null, where);
      if (ack.ok === true) {
        seen.ok = (seen.ok ?? 0) + 1;
      } else {
        assert.equal(ack.ok, false, where);
        assert.deepEqual(Object.keys(ack.error).sort(), ["code", "message"], where);
        assert.ok(codes.includes(ack.error.code), where);
        assert.ok(ack.error.message.length > 0, where);
        seen[ack.error.code] = (seen[ack.error.code] ?? 0) + 1;
      }
      sent++;
    }
  }
  assert.ok(socket.connected, "the connection survived");
  socket.close();
  return { sent, seen };
});
