// The runtime's MCP endpoint as a sandbox sees it, next to a socket.io-client watching
// the session: create an `event-researcher` session, read its MCP config from the live
// sandbox, call `/mcp` with no token and a wrong one, then with the session's token
// call `fetch_events` once per entry of `calls`, and wait for the `tool_failed` error
// event of the failing one. Hand-written JSON-RPC over HTTP, as an MCP client sends it.
//
// SCRIPT_ARGS: { marketKey, sandboxRoot, calls: [arguments, ...] }

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { collectEvents, connect, requestOk, runScript } from "./client.mjs";
import { scriptArgs, waitForStatus } from "./checks.mjs";

runScript(async ({ url, token }) => {
  const { marketKey, sandboxRoot, calls } = scriptArgs();
  const socket = await connect(url, { token });
  const events = collectEvents(socket);
  const created = await requestOk(socket, "session:create", {
    agentType: "event-researcher",
    metadata: { marketKey },
  });
  const id = created.session.id;
  await waitForStatus(events, id, "idle");

  const config = readMcpConfig(sandboxRoot, id);
  const server = config.mcpServers.runtime;
  const refused = {
    missing: await post(server.url, {}, initialize(1)),
    wrong: await post(server.url, { authorization: "Bearer not-the-token" }, initialize(1)),
  };

  const auth = { authorization: server.headers.Authorization };
  const opened = await post(server.url, auth, initialize(1));
  assert.equal(opened.status, 200, JSON.stringify(opened));
  const session = { ...auth, "mcp-session-id": opened.headers["mcp-session-id"] };
  const notified = await post(server.url, session, {
    jsonrpc: "2.0",
    method: "notifications/initialized",
  });
  assert.equal(notified.status, 202, JSON.stringify(notified));
  const listed = await post(server.url, session, { jsonrpc: "2.0", id: 2, method: "tools/list" });
  const results = [];
  for (const [n, args] of calls.entries()) {
    const call = { name: "fetch_events", arguments: args };
    const answer = await post(server.url, session, {
      jsonrpc: "2.0",
      id: 3 + n,
      method: "tools/call",
      params: call,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer));
    results.push(answer.message.result);
  }

  const failure = await events.waitFor(
    (e) => e.sessionId === id && e.type === "error" && e.data.code === "tool_failed",
  );
  await requestOk(socket, "session:stop", { sessionId: id }, 15000);
  socket.close();
  return {
    sessionId: id,
    refused,
    tools: listed.message.result.tools.map((t) => t.name),
    results,
    failure: failure.data,
  };
});

/** The agent's MCP config in the live sandbox of session `id` under `root`. */
function readMcpConfig(root, id) {
  const dirs = readdirSync(root).filter((name) => name.startsWith(`${id}-`));
  assert.equal(dirs.length, 1, `one sandbox of ${id}: ${dirs}`);
  return JSON.parse(readFileSync(join(root, dirs[0], "home", "mcp-config.json"), "utf8"));
}

function initialize(id) {
  return {
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: {
      protocolVersion: "2025-06-18",
      capabilities: {},
      clientInfo: { name: "ticketdrop-e2e", version: "1.0.0" },
    },
  };
}

/**
 * POSTs one JSON-RPC message as MCP's Streamable HTTP transport does; resolves with
 * { status, headers, body, message }: `message` is the JSON-RPC answer, read from a JSON
 * body or from the `data:` lines of an event stream.
 */
async function post(url, headers, message) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify(message),
    signal: AbortSignal.timeout(10000),
  });
  const body = await response.text();
  const answers = (response.headers.get("content-type") ?? "").includes("text/event-stream")
    ? body
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
        .filter((data) => data.length > 0)
    : [body];
  const parsed = answers.flatMap((text) => {
    try {
      return [JSON.parse(text)];
    } catch {
      return [];
    }
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body,
    message: parsed.find((m) => m.id === message.id) ?? null,
  };
}
