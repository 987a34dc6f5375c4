import type { AckOf, Envelope, RequestName, RequestPayload, SessionRecord } from "./types.js";

/** Where a transport hands what it hears. */
export interface TransportSink {
  /** An event envelope, live or replayed; may repeat or skip seqs (the session fixes that). */
  event(envelope: Envelope): void;
  /** The connection came back after it was lost: every followed session must resync. */
  reconnected(): void;
}

/** A page of a session's log. */
export interface EventPage {
  events: Envelope[];
  hasMore: boolean;
}

/** How the client reaches the runtime: Socket.IO, or REST with SSE. */
export interface Transport {
  /** Which transport this is. */
  readonly kind: "socketio" | "rest";
  /** Sends one request; resolves with its ack, rejects with an `AgentRuntimeError`. */
  request<K extends RequestName>(name: K, payload: RequestPayload<K>): Promise<AckOf<K>>;
  /**
   * Follows a session's live events from after `lastSeq()` on, and again from after
   * `lastSeq()` after every interruption; resolves once the feed is open.
   */
  follow(sessionId: string, lastSeq: () => number): Promise<SessionRecord | undefined>;
  /** Stops following a session. */
  unfollow(sessionId: string): Promise<void>;
  /** One page of the session's log after `afterSeq`, oldest first. */
  page(sessionId: string, afterSeq: number): Promise<EventPage>;
  /** A workspace file's bytes. */
  download(sessionId: string, path: string): Promise<Uint8Array>;
  /** Closes the connection and every feed. */
  close(): void;
}
