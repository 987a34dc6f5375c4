// The baseline for the load benchmark: a plain Node relay of the runtime's Socket.IO
// protocol, the server a TypeScript team would write first. One child process per session
// (the same agent program the runtime runs), events numbered per session and kept only in
// memory, every envelope sent to the session's room as soon as the agent writes its line.
//
//   node bench/relay.mjs --port 4000 --agent target/release/scripted-agent [--root DIR]
//
// It implements what bench/load.mjs uses, with the runtime's payloads and acks (see
// docs/protocol.md): the handshake (a token is checked only when RELAY_TOKEN is set),
// `session:create` (answers once the agent answered `initialize`, like the runtime),
// `session:message` (queued while a turn runs), `session:delete`, and `session:event`
// envelopes (`status`, `input`, `agent`) with gap-free `seq`. There is no store, no
// sandbox, no replay and no recovery: that is the point of the comparison.

import { spawn } from "node:child_process";
import { randomUUID, timingSafeEqual } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { Server } from "socket.io";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    agent: { type: "string" },
    root: { type: "string" },
  },
});
if (!args.agent) throw new Error("--agent is required");
const root = args.root ?? mkdtempSync(join(tmpdir(), "relay-"));
mkdirSync(root, { recursive: true });
const token = process.env.RELAY_TOKEN ?? null;

/** Sessions by id; each holds its agent, its event log and its message queue. */
const sessions = new Map();

/** The agent's flags, as the runtime passes them to Claude Code. */
const AGENT_ARGS = [
  "--output-format",
  "stream-json",
  "--verbose",
  "--input-format",
  "stream-json",
];

class Session {
  constructor(id, agentType, metadata) {
    const now = new Date().toISOString();
    this.id = id;
    this.room = `session:${id}`;
    this.agentType = agentType;
    this.metadata = metadata ?? {};
    this.createdAt = now;
    this.status = "starting";
    this.events = [];
    this.queue = [];
    this.turnActive = false;
    this.dir = join(root, id);
    this.child = null;
  }

  /** The session object of the protocol. */
  view() {
    const now = new Date().toISOString();
    return {
      id: this.id,
      agentType: this.agentType,
      status: this.status,
      metadata: this.metadata,
      createdAt: this.createdAt,
      updatedAt: now,
      lastActivityAt: now,
      lastSeq: this.events.length,
      agentSessionId: this.id,
      usage: { inputTokens: 0, outputTokens: 0, costUsd: 0, turns: 0 },
      budget: { maxCostUsd: null, maxTokens: null, maxTurns: null },
      forkedFrom: null,
      error: null,
    };
  }

  /** Appends an event to the in-memory log and sends it to the session's room. */
  publish(type, data) {
    const envelope = {
      sessionId: this.id,
      seq: this.events.length + 1,
      at: new Date().toISOString(),
      type,
      data,
    };
    this.events.push(envelope);
    io.to(this.room).emit("session:event", envelope);
  }

  setStatus(status) {
    this.status = status;
    this.publish("status", { status });
  }

  /** Starts the agent; resolves once it answered `initialize`. */
  start() {
    mkdirSync(this.dir, { recursive: true });
    const child = spawn(args.agent, [...AGENT_ARGS, "--session-id", this.id], {
      cwd: this.dir,
      env: { PATH: process.env.PATH, CLAUDE_CONFIG_DIR: join(this.dir, ".claude") },
      stdio: ["pipe", "pipe", "ignore"],
    });
    this.child = child;
    this.publish("status", { status: "starting" });
    return new Promise((resolve, reject) => {
      let ready = false;
      child.once("error", (error) => {
        this.child = null; // never spawned: no exit will follow
        reject(error);
      });
      child.once("exit", (code, signal) => {
        this.child = null;
        if (!ready) reject(new Error(`the agent exited with ${code ?? signal} before it was ready`));
        else if (sessions.has(this.id) && this.status !== "stopping") this.crashed(code, signal);
      });
      child.stdin.on("error", () => {}); // the exit handler reports a dead agent
      createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (text) => {
        let line;
        try {
          line = JSON.parse(text);
        } catch {
          return;
        }
        if (line.type === "control_response") {
          if (line.response?.request_id === "init" && !ready) {
            ready = true;
            this.setStatus("idle");
            resolve();
          }
          return;
        }
        this.publish("agent", line);
        if (line.type === "result") this.turnEnded();
      });
      this.write({ type: "control_request", request_id: "init", request: { subtype: "initialize" } });
    });
  }

  write(line) {
    this.child?.stdin.write(`${JSON.stringify(line)}\n`);
  }

  /** Records the message and sends it to the agent now, or after the running turn. */
  message(content, messageId) {
    this.publish("input", { messageId, content });
    const seq = this.events.length;
    this.queue.push(content);
    if (!this.turnActive) this.dispatchNext();
    return seq;
  }

  dispatchNext() {
    const content = this.queue.shift();
    this.turnActive = true;
    this.write({ type: "user", session_id: "", message: { role: "user", content }, parent_tool_use_id: null });
    if (this.status !== "running") this.setStatus("running");
  }

  turnEnded() {
    this.turnActive = false;
    if (this.queue.length > 0) this.dispatchNext();
    else this.setStatus("idle");
  }

  crashed(code, signal) {
    this.publish("error", {
      code: "agent_crashed",
      message: `the agent exited with ${code ?? signal}`,
      fatal: true,
    });
    this.setStatus("failed");
  }

  /** Ends the agent (SIGTERM) and removes its directory; resolves once it exited. */
  async stop() {
    this.status = "stopping";
    const child = this.child;
    if (child) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const httpServer = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(httpServer, { maxHttpBufferSize: 1 << 20 });

io.use((socket, next) => {
  if (token === null) return next();
  const given = Buffer.from(String(socket.handshake.auth?.token ?? ""));
  const wanted = Buffer.from(token);
  const same = given.length === wanted.length && timingSafeEqual(given, wanted);
  return same ? next() : next(new Error("unauthorized"));
});

function fail(code, message) {
  return { ok: false, error: { code, message } };
}

/** Wraps a handler so it always acks once, with an error object instead of a throw. */
function handler(work) {
  return async (payload, ack) => {
    const reply = typeof ack === "function" ? ack : () => {};
    try {
      reply(await work(payload ?? {}));
    } catch (error) {
      reply(fail("internal", String(error.message ?? error)));
    }
  };
}

io.on("connection", (socket) => {
  socket.on(
    "session:create",
    handler(async ({ agentType, metadata, sessionId }) => {
      if (typeof agentType !== "string") return fail("invalid_request", "agentType is required");
      const id = typeof sessionId === "string" ? sessionId : randomUUID();
      if (sessions.has(id)) return fail("invalid_request", "sessionId is in use");
      const session = new Session(id, agentType, metadata);
      sessions.set(id, session);
      socket.join(session.room);
      try {
        await session.start();
      } catch (error) {
        sessions.delete(id);
        await session.stop();
        return fail("agent_failed", error.message);
      }
      return { ok: true, session: session.view() };
    }),
  );

  socket.on(
    "session:message",
    handler(async ({ sessionId, content, messageId }) => {
      const session = sessions.get(sessionId);
      if (!session) return fail("not_found", "no such session");
      if (content === undefined || content === null) {
        return fail("invalid_request", "content is required");
      }
      const id = typeof messageId === "string" ? messageId : randomUUID();
      return { ok: true, messageId: id, seq: session.message(content, id) };
    }),
  );

  socket.on(
    "session:delete",
    handler(async ({ sessionId }) => {
      const session = sessions.get(sessionId);
      if (!session) return fail("not_found", "no such session");
      sessions.delete(sessionId);
      await session.stop();
      io.socketsLeave(session.room);
      return { ok: true };
    }),
  );
});

async function shutdown() {
  await Promise.all([...sessions.values()].map((s) => s.stop()));
  io.close();
  rmSync(root, { recursive: true, force: true });
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

httpServer.listen(Number(args.port), args.host, () => {
  console.log(`relay listening on ${args.host}:${httpServer.address().port}`);
});
