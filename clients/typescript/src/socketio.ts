import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

import { AgentRuntimeError, ConnectionClosedError } from "./errors.js";
import { Http, resolveToken, type TokenSource } from "./http.js";
import type { EventPage, Transport, TransportSink } from "./transport.js";
import type { AckOf, ErrorObject, RequestName, RequestPayload, SessionRecord } from "./types.js";

/** What the Socket.IO transport needs. */
export interface SocketTransportOptions {
  token: TokenSource | undefined;
  requestTimeoutMs: number;
  reconnectDelayMs: number;
  /** Passed to socket.io-client's `io()` as they are (after the SDK's own). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

type Ack = { ok: true } & Record<string, unknown> | { ok: false; error: ErrorObject };

/**
 * Socket.IO: requests with acks, `session:event` for live events, automatic
 * reconnection by socket.io-client (with a fresh token each time).
 */
export class SocketTransport implements Transport {
  readonly kind = "socketio";
  readonly socket: Socket;
  private readonly http: Http;
  private connectedOnce = false;
  private closed = false;

  private constructor(
    url: string,
    private readonly options: SocketTransportOptions,
    private readonly sink: TransportSink,
  ) {
    this.http = new Http(url, options.token, options.requestTimeoutMs);
    this.socket = io(url, {
      auth: (callback) => {
        resolveToken(options.token).then(
          (token) => callback({ token: token ?? "" }),
          () => callback({ token: "" }),
        );
      },
      reconnectionDelay: options.reconnectDelayMs,
      reconnectionDelayMax: Math.max(options.reconnectDelayMs, 5000),
      ...options.socketOptions,
    });
    this.socket.on("session:event", (envelope) => sink.event(envelope));
    this.socket.on("connect", () => {
      if (this.connectedOnce) sink.reconnected();
      this.connectedOnce = true;
    });
    // socket.io-client leaves a socket the server disconnected (a runtime shutting
    // down) disconnected; the SDK connects it again.
    this.socket.on("disconnect", (reason) => {
      if (reason === "io server disconnect" && !this.closed) {
        setTimeout(() => {
          if (!this.closed) this.socket.connect();
        }, options.reconnectDelayMs);
      }
    });
  }

  /** Connects; rejects with `unauthorized` when the handshake is refused. */
  static connect(url: string, options: SocketTransportOptions, sink: TransportSink): Promise<SocketTransport> {
    const transport = new SocketTransport(url, options, sink);
    const socket = transport.socket;
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        socket.off("connect_error", onError);
        resolve(transport);
      };
      const onError = (error: Error) => {
        // A refused handshake is final; a transport error is retried by socket.io-client.
        if (socket.active) return;
        socket.off("connect", onConnect);
        transport.close();
        reject(new AgentRuntimeError({ code: "unauthorized", message: error.message }));
      };
      socket.once("connect", onConnect);
      socket.on("connect_error", onError);
    });
  }

  async request<K extends RequestName>(name: K, payload: RequestPayload<K>): Promise<AckOf<K>> {
    if (this.closed) throw new ConnectionClosedError();
    let ack: Ack;
    try {
      ack = await this.socket.timeout(this.options.requestTimeoutMs).emitWithAck(name, payload);
    } catch (error) {
      throw new ConnectionClosedError(`${name} got no answer: ${(error as Error).message}`);
    }
    if (!ack.ok) throw new AgentRuntimeError(ack.error);
    const { ok: _ok, ...rest } = ack;
    return rest as AckOf<K>;
  }

  async follow(sessionId: string, lastSeq: () => number): Promise<SessionRecord | undefined> {
    // `session:join` puts the socket in the session's room; the replay it answers with
    // goes to the sink like live events. After a reconnect the client calls this again.
    let page = await this.request("session:join", { sessionId, afterSeq: lastSeq() });
    const session = page.session ?? undefined;
    for (;;) {
      for (const envelope of page.events) this.sink.event(envelope);
      if (!page.hasMore || page.events.length === 0) return session;
      page = await this.request("session:join", { sessionId, afterSeq: page.events.at(-1)!.seq });
    }
  }

  async unfollow(sessionId: string): Promise<void> {
    await this.request("session:leave", { sessionId });
  }

  async page(sessionId: string, afterSeq: number): Promise<EventPage> {
    const { events, hasMore } = await this.request("session:join", { sessionId, afterSeq });
    return { events, hasMore };
  }

  download(sessionId: string, path: string): Promise<Uint8Array> {
    return this.http.bytes(filePath(sessionId, path));
  }

  close(): void {
    this.closed = true;
    this.socket.disconnect();
  }
}

/** The REST path of a workspace file. */
export function filePath(sessionId: string, path: string): string {
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  return `/v1/sessions/${encodeURIComponent(sessionId)}/files/${encoded}`;
}
