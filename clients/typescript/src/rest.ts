import { AgentRuntimeError, ConnectionClosedError } from "./errors.js";
import { Http, readSse, type TokenSource } from "./http.js";
import { filePath } from "./socketio.js";
import type { EventPage, Transport, TransportSink } from "./transport.js";
import type { AckOf, Envelope, RequestName, RequestPayload, SessionRecord } from "./types.js";

/** What the REST transport needs. */
export interface RestTransportOptions {
  token: TokenSource | undefined;
  requestTimeoutMs: number;
  reconnectDelayMs: number;
}

type Handler = (payload: never) => Promise<unknown>;

/**
 * REST for requests and one Server-Sent Events stream per followed session. A stream
 * that breaks is opened again with `?after=<last seq>`, so it resumes where it stopped.
 */
export class RestTransport implements Transport {
  readonly kind = "rest";
  private readonly http: Http;
  private readonly streams = new Map<string, AbortController>();
  private closed = false;
  private readonly handlers: Record<RequestName, Handler>;

  constructor(
    url: string,
    private readonly options: RestTransportOptions,
    private readonly sink: TransportSink,
  ) {
    this.http = new Http(url, options.token, options.requestTimeoutMs);
    const path = (id: string, rest = "") => `/v1/sessions/${encodeURIComponent(id)}${rest}`;
    const http = this.http;
    this.handlers = {
      "session:create": (p: RequestPayload<"session:create">) => http.json("POST", "/v1/sessions", p),
      "session:message": ({ sessionId, ...body }: RequestPayload<"session:message">) =>
        http.json("POST", path(sessionId, "/messages"), body),
      "session:join": async ({ sessionId, afterSeq }: RequestPayload<"session:join">) => {
        const { session } = await http.json<{ session: SessionRecord }>("GET", path(sessionId));
        const page = afterSeq === undefined || afterSeq === null ? { events: [], hasMore: false } : await this.page(sessionId, afterSeq);
        return { session, ...page };
      },
      "session:leave": async ({ sessionId }: RequestPayload<"session:leave">) => {
        await this.unfollow(sessionId);
        return {};
      },
      "session:answer": ({ sessionId, ...body }: RequestPayload<"session:answer">) =>
        http.json("POST", path(sessionId, "/answers"), body),
      "session:budget": ({ sessionId, budget }: RequestPayload<"session:budget">) =>
        http.json("PUT", path(sessionId, "/budget"), budget),
      "session:interrupt": async ({ sessionId }: RequestPayload<"session:interrupt">) => {
        await http.json("POST", path(sessionId, "/interrupt"));
        return {};
      },
      "session:stop": ({ sessionId }: RequestPayload<"session:stop">) => http.json("POST", path(sessionId, "/stop")),
      "session:resume": ({ sessionId }: RequestPayload<"session:resume">) =>
        http.json("POST", path(sessionId, "/resume")),
      "session:delete": async ({ sessionId }: RequestPayload<"session:delete">) => {
        await http.json("DELETE", path(sessionId));
        return {};
      },
      "session:get": ({ sessionId }: RequestPayload<"session:get">) => http.json("GET", path(sessionId)),
      "session:fork": ({ sessionId }: RequestPayload<"session:fork">) => http.json("POST", path(sessionId, "/fork")),
      "session:list": (filter: RequestPayload<"session:list">) => {
        const query = new URLSearchParams();
        for (const [key, value] of Object.entries(filter ?? {})) {
          if (value !== undefined && value !== null) query.set(key, String(value));
        }
        const text = query.toString();
        return http.json("GET", `/v1/sessions${text ? `?${text}` : ""}`);
      },
      "session:files": ({ sessionId }: RequestPayload<"session:files">) => http.json("GET", path(sessionId, "/files")),
      "profile:list": () => http.json("GET", "/v1/profiles"),
    };
  }

  async request<K extends RequestName>(name: K, payload: RequestPayload<K>): Promise<AckOf<K>> {
    if (this.closed) throw new ConnectionClosedError();
    return (await this.handlers[name](payload as never)) as AckOf<K>;
  }

  /**
   * Opens the session's SSE stream after `lastSeq()`; resolves once it is open. When it
   * breaks (the runtime restarted, the network went away) it is opened again, after
   * `lastSeq()` of that moment, until `unfollow` or `close`.
   */
  async follow(sessionId: string, lastSeq: () => number): Promise<SessionRecord | undefined> {
    this.streams.get(sessionId)?.abort();
    const controller = new AbortController();
    this.streams.set(sessionId, controller);
    const response = await this.open(sessionId, lastSeq(), controller.signal);
    void this.run(sessionId, lastSeq, controller, response);
    return undefined;
  }

  private open(sessionId: string, after: number, signal: AbortSignal): Promise<Response> {
    const path = `/v1/sessions/${encodeURIComponent(sessionId)}/events?after=${after}`;
    return this.http.stream(path, { accept: "text/event-stream" }, signal);
  }

  private async run(
    sessionId: string,
    lastSeq: () => number,
    controller: AbortController,
    first: Response,
  ): Promise<void> {
    let response: Response | undefined = first;
    let delay = this.options.reconnectDelayMs;
    while (!controller.signal.aborted) {
      try {
        if (!response) {
          response = await this.open(sessionId, lastSeq(), controller.signal);
        }
        delay = this.options.reconnectDelayMs;
        await readSse(response.body!, (data) => this.sink.event(JSON.parse(data) as Envelope));
      } catch (error) {
        // A deleted or foreign session will not come back: stop following it.
        if (error instanceof AgentRuntimeError && (error.code === "not_found" || error.code === "unauthorized")) {
          break;
        }
      }
      response = undefined;
      if (controller.signal.aborted) break;
      await sleep(delay, controller.signal);
      delay = Math.min(delay * 2, 5000);
    }
    if (this.streams.get(sessionId) === controller) this.streams.delete(sessionId);
  }

  async unfollow(sessionId: string): Promise<void> {
    this.streams.get(sessionId)?.abort();
    this.streams.delete(sessionId);
  }

  async page(sessionId: string, afterSeq: number): Promise<EventPage> {
    return this.http.json<EventPage>(
      "GET",
      `/v1/sessions/${encodeURIComponent(sessionId)}/events?after=${afterSeq}&limit=1000`,
    );
  }

  download(sessionId: string, path: string): Promise<Uint8Array> {
    return this.http.bytes(filePath(sessionId, path));
  }

  close(): void {
    this.closed = true;
    for (const controller of this.streams.values()) controller.abort();
    this.streams.clear();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
