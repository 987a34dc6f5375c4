// The client side of the load benchmark: sockets, sessions and the per-event bookkeeping
// (latency of stamped agent lines, envelope counts, sequence gaps, finished turns).

import { io } from "socket.io-client";

import { nowUs, pool } from "./stats.mjs";

/** Every session:event envelope ends up here; one instance per benchmark run. */
export class Tally {
  constructor() {
    /** Envelopes received so far (all types). */
    this.envelopes = 0;
    /** Latency samples in microseconds, only while `measuring`. */
    this.latenciesUs = [];
    this.measuring = false;
    /** Envelopes never received: the sum of every jump in a session's seq past + 1. */
    this.missed = 0;
    /** Sessions by id. */
    this.sessions = new Map();
  }

  /** Handles one envelope; `receivedUs` is taken before anything else is done. */
  onEvent(envelope, receivedUs) {
    this.envelopes += 1;
    const session = this.sessions.get(envelope.sessionId);
    if (!session) return;
    // An envelope at or below the last seq is one the create ack already covered.
    if (envelope.seq > session.lastSeq + 1) this.missed += envelope.seq - session.lastSeq - 1;
    session.lastSeq = Math.max(session.lastSeq, envelope.seq);
    if (envelope.type !== "agent") {
      if (envelope.type === "status" && envelope.data?.status === "failed") {
        session.finish(new Error(`session failed: ${JSON.stringify(envelope.data)}`));
      }
      return;
    }
    const line = envelope.data;
    const stamp = line?.message?.stamp_us;
    if (this.measuring && line?.type === "assistant" && typeof stamp === "number") {
      this.latenciesUs.push(receivedUs - stamp);
    }
    if (line?.type === "result") session.finish(null, line);
  }
}

/** One session: its id, the socket it lives on, and the turn being waited for. */
class Session {
  constructor(id, socket) {
    this.id = id;
    this.socket = socket;
    this.lastSeq = 0;
    this.waiter = null;
  }

  /** A promise for the next `result` (or failure) of this session. */
  nextResult() {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  finish(error, result) {
    const waiter = this.waiter;
    this.waiter = null;
    if (!waiter) return;
    if (error) waiter.reject(error);
    else waiter.resolve(result);
  }
}

/**
 * Opens `count` websocket connections, `limit` handshakes at a time, each reporting its
 * envelopes to `tally`. Reconnection is off: a dropped socket is a finding, not noise.
 */
export async function connectAll(url, count, limit, tally, timeoutMs) {
  const indexes = Array.from({ length: count }, (_, i) => i);
  return pool(indexes, limit, () => connectOne(url, tally, timeoutMs));
}

function connectOne(url, tally, timeoutMs) {
  const socket = io(url, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
    auth: { token: "" },
  });
  socket.on("session:event", (envelope) => tally.onEvent(envelope, nowUs()));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.close();
      reject(new Error(`connect failed: ${error.message}`));
    });
  });
}

/**
 * Emits `session:create` and times it until the ack, which the runtime sends once the
 * session is idle (sandbox made, agent started and initialized). Resolves with
 * { ms, session } or { ms, error }.
 */
export async function createSession(socket, agentType, tally, timeoutMs) {
  const started = nowUs();
  let ack;
  try {
    ack = await socket.timeout(timeoutMs).emitWithAck("session:create", { agentType });
  } catch (error) {
    return { ms: (nowUs() - started) / 1000, error: `no ack: ${error.message}` };
  }
  const ms = (nowUs() - started) / 1000;
  if (!ack?.ok) return { ms, error: ack?.error?.code ?? JSON.stringify(ack) };
  const session = new Session(ack.session.id, socket);
  // Events that raced ahead of the ack (the `idle` status) were counted as unknown;
  // the session's own log position is what the ack says.
  session.lastSeq = ack.session.lastSeq ?? 0;
  tally.sessions.set(session.id, session);
  return { ms, session };
}

/**
 * Sends `content` to `session` and resolves with the turn's `result` line, or rejects
 * if the ack is an error, the session fails, or `timeoutMs` passes.
 */
export async function runTurn(session, content, timeoutMs) {
  const result = session.nextResult();
  const timer = setTimeout(
    () => session.finish(new Error(`no result within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    const ack = await session.socket
      .timeout(timeoutMs)
      .emitWithAck("session:message", { sessionId: session.id, content });
    if (!ack?.ok) throw new Error(`session:message failed: ${JSON.stringify(ack)}`);
    return await result;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Emits `session:delete` and times it until the ack (the agent has been ended and the
 * session's data removed). Resolves with { ok, ms } or { ok: false, ms, error }.
 */
export async function deleteSession(session, timeoutMs) {
  const started = nowUs();
  let ack;
  try {
    ack = await session.socket
      .timeout(timeoutMs)
      .emitWithAck("session:delete", { sessionId: session.id });
  } catch (error) {
    return { ok: false, ms: (nowUs() - started) / 1000, error: `no ack: ${error.message}` };
  }
  const ms = (nowUs() - started) / 1000;
  if (!ack?.ok) return { ok: false, ms, error: ack?.error?.code ?? JSON.stringify(ack) };
  return { ok: true, ms };
}
