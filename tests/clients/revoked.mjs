// A socket whose API key is revoked while it is connected. SCRIPT_ARGS:
// `{ token, command: [program, ...args] }` — the command revokes the key. Afterwards the
// socket's next requests are refused with `unauthorized` (within the key cache time) and
// the socket is disconnected.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, request, requestOk, runScript } from "./client.mjs";
import { scriptArgs } from "./checks.mjs";

runScript(async ({ url }) => {
  const { token, command } = scriptArgs();
  const socket = await connect(url, { token });
  await requestOk(socket, "session:list", {});
  const disconnected = new Promise((resolve) => socket.once("disconnect", () => resolve(true)));
  execFileSync(command[0], command.slice(1));
  const revokedAt = Date.now();
  let refused = null;
  while (refused === null) {
    assert.ok(Date.now() - revokedAt < 3000, "the revoked key still works after 3 s");
    const ack = await request(socket, "session:list", {});
    if (!ack.ok) refused = ack.error.code;
    else await sleep(100);
  }
  const closed = await Promise.race([disconnected, sleep(2000).then(() => false)]);
  return { refused, closed };
});
