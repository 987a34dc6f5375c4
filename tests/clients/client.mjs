// Helpers for test scripts that drive the runtime with the real socket.io-client.
//
// A script imports what it needs and wraps its body in `runScript`, which prints the
// body's result as one JSON line on stdout, or the error on stderr with exit code 1,
// and never runs longer than SCRIPT_TIMEOUT_MS (default 20000):
//
//   import { runScript, connect, request, collectEvents } from "./client.mjs";
//   runScript(async ({ url, token }) => {
//     const socket = await connect(url, { token });
//     const events = collectEvents(socket);
//     const created = await request(socket, "session:create", { agentType: "echo" });
//     await events.waitForSeq(created.session.id, 2);
//     socket.close();
//     return { created, events: events.all() };
//   });

import { writeFileSync } from "node:fs";
import { io } from "socket.io-client";

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * With PROTOCOL_LOG set, every ack `request` gets and every envelope `collectEvents`
 * sees, one JSON line each, written to that file when the script succeeds: the e2e
 * suite checks them against docs/protocol.schema.json.
 */
const protocolLog = process.env.PROTOCOL_LOG ? [] : null;

function record(line) {
  if (protocolLog) protocolLog.push(JSON.stringify(line));
}

/**
 * Connects to the runtime's default namespace and resolves once connected.
 * Rejects with an Error whose message is the server's `connect_error` text
 * (e.g. "unauthorized"). Reconnection is off unless asked for, so a refused
 * handshake fails once instead of retrying forever.
 *
 * options: token (sent as `auth.token`), headers (extraHeaders, e.g. Authorization),
 * transports (default: the client's own), reconnection, timeoutMs.
 */
export function connect(url, options = {}) {
  const {
    token,
    headers,
    transports,
    reconnection = false,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  } = options;
  const socketOptions = { reconnection, timeout: timeoutMs, forceNew: true };
  if (token !== undefined) socketOptions.auth = { token };
  if (headers !== undefined) socketOptions.extraHeaders = headers;
  if (transports !== undefined) socketOptions.transports = transports;
  const socket = io(url, socketOptions);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (error) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(error.message));
    });
  });
}

/**
 * Emits a request and resolves with its ack (`{ ok, ... }`). Rejects if no ack
 * arrives within timeoutMs. A `payload` of undefined sends the event without one.
 */
export function request(socket, event, payload, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const timed = socket.timeout(timeoutMs);
  const pending =
    payload === undefined ? timed.emitWithAck(event) : timed.emitWithAck(event, payload);
  return pending.then(
    (ack) => {
      record({ kind: "ack", event, payload: payload ?? null, ack });
      return ack;
    },
    (error) => {
      throw new Error(`no ack for ${event} within ${timeoutMs} ms (${error.message})`);
    },
  );
}

/** Like `request`, but rejects unless the ack is `{ ok: true }`; resolves with it. */
export async function requestOk(socket, event, payload, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const ack = await request(socket, event, payload, timeoutMs);
  if (!ack || ack.ok !== true) {
    throw new Error(`${event} failed: ${JSON.stringify(ack)}`);
  }
  return ack;
}

/** Resolves with the next `name` event's first argument, or rejects after timeoutMs. */
export function nextEvent(socket, name, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const onEvent = (value) => {
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => {
      socket.off(name, onEvent);
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once(name, onEvent);
  });
}

/**
 * Collects every `session:event` envelope the socket receives, in arrival order.
 *
 * Returns { all(), forSession(id), bySeq(id), waitFor(predicate, timeoutMs),
 * waitForSeq(id, seq, timeoutMs), waitForResult(id, timeoutMs), stop() }.
 * `bySeq` drops repeats by seq, as a real client does after `session:join`.
 */
export function collectEvents(socket) {
  const received = [];
  const waiters = new Set();
  const onEvent = (envelope) => {
    record({ kind: "event", envelope });
    received.push(envelope);
    for (const waiter of [...waiters]) waiter.check();
  };
  socket.on("session:event", onEvent);

  const forSession = (id) => received.filter((e) => e.sessionId === id);

  const waitFor = (predicate, timeoutMs = DEFAULT_TIMEOUT_MS) =>
    new Promise((resolve, reject) => {
      const waiter = {
        check() {
          const found = received.find(predicate);
          if (found !== undefined) {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve(found);
          }
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching session:event within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(waiter);
      waiter.check();
    });

  return {
    all: () => [...received],
    forSession,
    bySeq(id) {
      const seen = new Map();
      for (const envelope of forSession(id)) {
        if (!seen.has(envelope.seq)) seen.set(envelope.seq, envelope);
      }
      return [...seen.values()].sort((a, b) => a.seq - b.seq);
    },
    waitFor,
    waitForSeq: (id, seq, timeoutMs) =>
      waitFor((e) => e.sessionId === id && e.seq >= seq, timeoutMs),
    waitForResult: (id, timeoutMs) =>
      waitFor(
        (e) => e.sessionId === id && e.type === "agent" && e.data && e.data.type === "result",
        timeoutMs,
      ),
    stop: () => socket.off("session:event", onEvent),
  };
}

/**
 * Runs a test script body with { url, token } from RUNTIME_URL / RUNTIME_TOKEN (or the
 * first two command-line arguments) and reports as described at the top of this file.
 */
export function runScript(body) {
  const url = process.env.RUNTIME_URL ?? process.argv[2];
  const token = process.env.RUNTIME_TOKEN ?? process.argv[3];
  const limitMs = Number(process.env.SCRIPT_TIMEOUT_MS ?? 20000);
  const fail = (error) => {
    process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  };
  if (!url) fail(new Error("set RUNTIME_URL or pass the runtime's URL as the first argument"));
  const timer = setTimeout(() => fail(new Error(`script ran longer than ${limitMs} ms`)), limitMs);
  Promise.resolve()
    .then(() => body({ url, token }))
    .then((result) => {
      clearTimeout(timer);
      if (protocolLog) writeFileSync(process.env.PROTOCOL_LOG, protocolLog.join("\n"));
      // Exit only once the line is flushed: writes to a pipe are asynchronous, and
      // exiting at once cuts a long line off at the pipe's buffer size.
      process.stdout.write(`${JSON.stringify(result ?? null)}\n`, () => process.exit(0));
    }, fail);
}
