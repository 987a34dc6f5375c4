import type { ManagerOptions, SocketOptions } from "socket.io-client";

import type { TokenSource } from "./http.js";
import { RestTransport } from "./rest.js";
import { Session, type SessionHost } from "./session.js";
import { SocketTransport } from "./socketio.js";
import type { Transport, TransportSink } from "./transport.js";
import type {
  AckOf,
  CreateRequest,
  Envelope,
  ListRequest,
  Profile,
  RequestName,
  RequestPayload,
  SessionRecord,
} from "./types.js";

/** How to connect. */
export interface ConnectOptions {
  /** An API key, a JWT or the shared secret; or a function called for each (re)connection. */
  token?: TokenSource;
  /** `"socketio"` (the default), or `"rest"`: REST requests and SSE streams. */
  transport?: "socketio" | "rest";
  /** How long a request waits for its answer (default 60 s). */
  requestTimeoutMs?: number;
  /** The first wait before reconnecting (default 500 ms; doubled up to 5 s). */
  reconnectDelayMs?: number;
  /** Called with errors no caller can catch: a failed handler, a failed gap fill. */
  onError?: (error: unknown) => void;
  /** Passed to socket.io-client's `io()` (the Socket.IO transport only). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

/**
 * Connects to the runtime at `url` (`http://host:port`). Rejects with an
 * `AgentRuntimeError` `unauthorized` when the token is refused (Socket.IO).
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<AgentRuntimeClient> {
  const client = new AgentRuntimeClient(options);
  const settings = {
    token: options.token,
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    reconnectDelayMs: options.reconnectDelayMs ?? 500,
  };
  client.transport =
    options.transport === "rest"
      ? new RestTransport(url, settings, client.sink)
      : await SocketTransport.connect(url, { ...settings, socketOptions: options.socketOptions ?? {} }, client.sink);
  return client;
}

/** A connection to the runtime and the sessions it follows. */
export class AgentRuntimeClient {
  /** @internal Set by `connect`. */
  transport!: Transport;
  /** The sessions this client follows, by id. */
  readonly sessions = new Map<string, Session>();
  private readonly reconnectListeners = new Set<() => void>();
  /** Events of sessions being joined, heard before the join answered. */
  private readonly joining = new Map<string, Envelope[]>();

  /** @internal */
  readonly sink: TransportSink = {
    event: (envelope) => {
      const session = this.sessions.get(envelope.sessionId);
      if (session) session.ingest(envelope);
      else this.joining.get(envelope.sessionId)?.push(envelope);
    },
    reconnected: () => {
      for (const session of this.sessions.values()) {
        session.resync().catch((error) => this.reportError(error));
      }
      for (const listener of this.reconnectListeners) listener();
    },
  };

  private readonly host: SessionHost = {
    transport: undefined as unknown as Transport,
    reportError: (error) => this.reportError(error),
    forget: (session) => {
      if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    },
    adopt: (record) => this.follow(record, 0),
  };

  /** @internal Use `connect`. */
  constructor(private readonly options: ConnectOptions) {
    Object.defineProperty(this.host, "transport", { get: () => this.transport });
  }

  /** Sends any request of the protocol as it is; resolves with its ack (without `ok`). */
  request<K extends RequestName>(name: K, payload: RequestPayload<K>): Promise<AckOf<K>> {
    return this.transport.request(name, payload);
  }

  /** Creates a session and follows it from seq 1. */
  async create(request: CreateRequest): Promise<Session> {
    const { session } = await this.transport.request("session:create", request);
    return this.follow(session, 0);
  }

  /**
   * Follows an existing session: its events after `afterSeq` (by default, only events
   * from now on), then live ones.
   */
  async join(sessionId: string, options: { afterSeq?: number } = {}): Promise<Session> {
    const existing = this.sessions.get(sessionId);
    if (existing) return existing;
    this.joining.set(sessionId, []);
    try {
      const { session } = await this.transport.request("session:get", { sessionId });
      return await this.follow(session, options.afterSeq ?? session.lastSeq);
    } finally {
      this.joining.delete(sessionId);
    }
  }

  private async follow(record: SessionRecord, afterSeq: number): Promise<Session> {
    const existing = this.sessions.get(record.id);
    if (existing) return existing;
    const session = new Session(this.host, record, afterSeq);
    this.sessions.set(record.id, session);
    for (const envelope of this.joining.get(record.id) ?? []) session.ingest(envelope);
    try {
      await session.resync();
    } catch (error) {
      session.close();
      throw error;
    }
    return session;
  }

  /** The caller's sessions (every session for an admin), a page at a time. */
  list(filter: ListRequest = {}): Promise<{ sessions: SessionRecord[]; nextCursor: string | null }> {
    return this.transport.request("session:list", filter);
  }

  /** A session object, without following the session. */
  async get(sessionId: string): Promise<SessionRecord> {
    return (await this.transport.request("session:get", { sessionId })).session;
  }

  /** The profiles clients may create sessions of. */
  async profiles(): Promise<Profile[]> {
    return (await this.transport.request("profile:list", {})).profiles;
  }

  /** Calls `listener` after each reconnect, once the followed sessions are being resynced. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Closes the connection; every session's iterators end. */
  close(): void {
    for (const session of [...this.sessions.values()]) session.close();
    this.transport.close();
  }

  private reportError(error: unknown): void {
    if (this.options.onError) this.options.onError(error);
  }
}
