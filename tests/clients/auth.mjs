// The handshake with `auth.mode = "shared-secret"`: a wrong or missing token is refused
// with `connect_error` "unauthorized"; the secret as `auth.token` or as an
// `Authorization: Bearer` header connects, on either transport. SCRIPT_ARGS:
// `{ secret, foreignSessionId? }`; a foreign session (another principal's) is not found.

import assert from "node:assert/strict";
import { connect, request, requestOk, runScript } from "./client.mjs";
import { assertError, scriptArgs } from "./checks.mjs";

/** The error message a refused connection attempt ends with. */
async function refusal(url, options) {
  const outcome = await connect(url, options).then(
    (socket) => {
      socket.close();
      return null;
    },
    (error) => error.message,
  );
  assert.notEqual(outcome, null, `connected with ${JSON.stringify(options)}`);
  return outcome;
}

/** Connects, makes one request, disconnects. */
async function works(url, options) {
  const socket = await connect(url, options);
  const profiles = await requestOk(socket, "profile:list");
  socket.close();
  return profiles.profiles.map((p) => p.name).sort();
}

runScript(async ({ url }) => {
  const { secret, foreignSessionId } = scriptArgs();
  const refused = {
    wrongToken: await refusal(url, { token: `${secret}x` }),
    noToken: await refusal(url, {}),
    emptyToken: await refusal(url, { token: "" }),
    wrongHeader: await refusal(url, { headers: { Authorization: "Bearer nope" } }),
    wrongTokenWebsocket: await refusal(url, { token: "nope", transports: ["websocket"] }),
  };
  for (const [name, message] of Object.entries(refused)) {
    assert.equal(message, "unauthorized", name);
  }

  const accepted = {
    token: await works(url, { token: secret }),
    header: await works(url, { headers: { Authorization: `Bearer ${secret}` } }),
    polling: await works(url, { token: secret, transports: ["polling"] }),
    websocket: await works(url, { token: secret, transports: ["websocket"] }),
  };
  for (const names of Object.values(accepted)) assert.deepEqual(names, ["asker", "claude", "claude-ask", "console", "tester"]);

  const socket = await connect(url, { token: secret });
  const foreign = {};
  if (foreignSessionId !== undefined) {
    for (const event of ["session:get", "session:join", "session:resume", "session:delete", "session:files"]) {
      const ack = await request(socket, event, { sessionId: foreignSessionId });
      foreign[event] = assertError(ack, "not_found").message;
    }
    const listed = await requestOk(socket, "session:list", {});
    assert.ok(!listed.sessions.some((s) => s.id === foreignSessionId), "not listed");
  }
  socket.close();
  return { refused, accepted, foreign };
});
