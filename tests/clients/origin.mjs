// Socket.IO handshakes from web pages: a foreign `Origin` is refused on both transports
// (long-polling through fetch, which can set `Origin`, and websocket); an allowed one
// connects and is served. SCRIPT_ARGS: `{ allowed, foreign }`, two origins.

import assert from "node:assert/strict";
import { Fetch } from "socket.io-client";
import { connect, requestOk, runScript } from "./client.mjs";
import { scriptArgs } from "./checks.mjs";

/** The two transports, each alone, so that neither can stand in for the other. */
const TRANSPORTS = { polling: [Fetch], websocket: ["websocket"] };

runScript(async ({ url }) => {
  const { allowed, foreign } = scriptArgs();
  const refused = {};
  const accepted = {};
  for (const [name, transports] of Object.entries(TRANSPORTS)) {
    refused[name] = await connect(url, { transports, headers: { Origin: foreign } }).then(
      (socket) => {
        socket.close();
        return null;
      },
      (error) => error.message,
    );
    assert.notEqual(refused[name], null, `${name}: a page of a foreign origin connected`);
    const socket = await connect(url, { transports, headers: { Origin: allowed } });
    const listed = await requestOk(socket, "profile:list");
    accepted[name] = listed.profiles.map((p) => p.name).sort();
    socket.close();
  }
  return { refused, accepted };
});
