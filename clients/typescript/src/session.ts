import { AgentRuntimeError } from "./errors.js";
import { EventQueue } from "./queue.js";
import type { Transport } from "./transport.js";
import type {
  AnswerRequest,
  Budget,
  Content,
  Envelope,
  FileEntry,
  PermissionData,
  QuestionData,
  SessionEvent,
  SessionRecord,
} from "./types.js";

/** How a permission request or a question is answered. */
export type Decision = Omit<AnswerRequest, "sessionId" | "requestId">;

/** Lets the tool call run (with `input` instead of the agent's; `always`: for the rest of the agent's process). */
export function allow(options: { input?: Record<string, unknown>; always?: boolean } = {}): Decision {
  return { behavior: "allow", ...options };
}

/** Refuses the tool call, or declines a question; the model gets `message`. */
export function deny(message?: string): Decision {
  return message === undefined ? { behavior: "deny" } : { behavior: "deny", message };
}

/** Answers a question: question text → an option's label, labels joined by `, `, or free text. */
export function answers(answers: Record<string, string>): Decision {
  return { behavior: "allow", answers };
}

/** A `permission` event waiting for an answer. */
export interface PermissionRequest extends PermissionData {
  /** The `permission` event. */
  event: Envelope;
}

/** A `question` event waiting for an answer. */
export interface QuestionRequest extends QuestionData {
  /** The `question` event. */
  event: Envelope;
}

/** What a session needs from its client. */
export interface SessionHost {
  transport: Transport;
  /** Reports an error no caller can catch (a failed handler, a failed gap fill). */
  reportError(error: unknown): void;
  /** The session stopped being followed (left, deleted, client closed). */
  forget(session: Session): void;
  /** Starts following another session (a fork). */
  adopt(record: SessionRecord): Promise<Session>;
}

type Listener = (event: SessionEvent) => void;
type Handler<R> = (request: R) => Decision | Promise<Decision>;

/**
 * One session followed by the client. It hands its events to the caller in seq order,
 * each exactly once: duplicates (a replay overlapping live events) are dropped, and an
 * event that comes after a gap waits until the gap is filled from the log. After every
 * reconnect the client re-joins with the last seq delivered.
 */
export class Session {
  /** The session's id. */
  readonly id: string;
  /** The session object as last heard (status and `lastSeq` follow the events). */
  record: SessionRecord;
  /** The seq of the last event handed to the caller. */
  lastSeq: number;

  private readonly listeners = new Set<Listener>();
  /** The SDK's own listeners (`next`, `turn`): they neither take nor keep the backlog. */
  private readonly watchers = new Set<Listener>();
  /** The last events delivered, for `next({ after })`. */
  private recent: SessionEvent[] = [];
  private readonly iterators = new Set<EventQueue<SessionEvent>>();
  /** Events delivered while nobody listened, for the first listener. */
  private backlog: SessionEvent[] = [];
  /** Events that came after a gap, by seq. */
  private readonly early = new Map<number, Envelope>();
  private filling = false;
  private fillAgain = false;
  /** Requests for a person without an `answer` event yet, by request id. */
  private readonly open = new Map<string, Envelope>();
  /** Request ids already given to a handler. */
  private readonly handled = new Set<string>();
  private permissionHandler: Handler<PermissionRequest> | undefined;
  private questionHandler: Handler<QuestionRequest> | undefined;
  private closed = false;

  /** @internal */
  constructor(
    private readonly host: SessionHost,
    record: SessionRecord,
    lastSeq: number,
  ) {
    this.id = record.id;
    this.record = record;
    this.lastSeq = lastSeq;
    for (const envelope of record.pending ?? []) {
      if (envelope.seq <= lastSeq) this.open.set(requestIdOf(envelope)!, envelope);
    }
  }

  // ---- events ----------------------------------------------------------------

  /** Calls `listener` with every event from now on (and the backlog, if it is the first). */
  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    this.flushBacklog();
    return () => this.listeners.delete(listener);
  }

  /** The events from now on (and the backlog, if it is the first) until the session is closed. */
  events(): AsyncIterableIterator<SessionEvent> {
    const queue: EventQueue<SessionEvent> = new EventQueue(() => this.iterators.delete(queue));
    this.iterators.add(queue);
    this.flushBacklog();
    return queue;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<SessionEvent> {
    return this.events();
  }

  /**
   * The first event with a seq above `after` that `predicate` accepts: among the last
   * 1000 events delivered, or the next ones. Without `after`, the next one delivered.
   */
  next<E extends SessionEvent = SessionEvent>(
    predicate: (event: SessionEvent) => boolean = () => true,
    after?: number,
  ): Promise<E> {
    if (after !== undefined) {
      const found = this.recent.find((e) => e.seq > after && predicate(e));
      if (found) return Promise.resolve(found as E);
    }
    return new Promise((resolve) => {
      const watcher: Listener = (event) => {
        if ((after === undefined || event.seq > after) && predicate(event)) {
          this.watchers.delete(watcher);
          resolve(event as E);
        }
      };
      this.watchers.add(watcher);
    });
  }

  /** The `result` of the turn whose `input` event has seq `inputSeq`. */
  result(inputSeq: number): Promise<ResultEvent> {
    return this.next(isResult, inputSeq);
  }

  /** Sends a message and resolves with the `result` event of the turn it started. */
  async turn(content: Content, options: { messageId?: string } = {}): Promise<ResultEvent> {
    const results: ResultEvent[] = [];
    const collect: Listener = (event) => {
      if (isResult(event)) results.push(event);
    };
    this.watchers.add(collect);
    try {
      const sent = await this.send(content, options);
      const early = results.find((e) => e.seq > sent.seq);
      return early ?? (await this.result(sent.seq));
    } finally {
      this.watchers.delete(collect);
    }
  }

  /** @internal An envelope from the transport, live or replayed. */
  ingest(envelope: Envelope): void {
    if (this.closed || envelope.seq <= this.lastSeq) return;
    if (envelope.seq > this.lastSeq + 1) {
      this.early.set(envelope.seq, envelope);
      void this.fill();
      return;
    }
    this.deliver(envelope);
    let next: Envelope | undefined;
    while ((next = this.early.get(this.lastSeq + 1)) !== undefined) {
      this.early.delete(next.seq);
      this.deliver(next);
    }
    for (const seq of this.early.keys()) if (seq <= this.lastSeq) this.early.delete(seq);
  }

  /** @internal Reads the log after the last delivered seq until the gap is closed. */
  async fill(): Promise<void> {
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = true;
    try {
      do {
        this.fillAgain = false;
        for (;;) {
          const before = this.lastSeq;
          const page = await this.host.transport.page(this.id, this.lastSeq);
          for (const envelope of page.events) this.ingest(envelope);
          if (!page.hasMore || this.lastSeq === before) break;
        }
      } while (this.fillAgain && !this.closed);
    } catch (error) {
      // The connection is gone: the reconnect fills the gap.
      this.host.reportError(error);
    } finally {
      this.filling = false;
    }
    this.dispatchRequests();
  }

  /** @internal Follows the session again from the last delivered seq (after a reconnect). */
  async resync(): Promise<void> {
    const record = await this.host.transport.follow(this.id, () => this.lastSeq);
    if (record) this.record = { ...record, lastSeq: Math.max(record.lastSeq, this.lastSeq) };
    if (record && record.lastSeq > this.lastSeq) await this.fill();
  }

  private deliver(envelope: Envelope): void {
    this.lastSeq = envelope.seq;
    const event = envelope as SessionEvent;
    this.track(event);
    this.recent.push(event);
    if (this.recent.length > 1000) this.recent = this.recent.slice(-500);
    for (const watcher of [...this.watchers]) watcher(event);
    if (this.listeners.size === 0 && this.iterators.size === 0) this.backlog.push(event);
    else this.hand(event);
  }

  /** Gives an event to the caller's listeners and iterators. */
  private hand(event: SessionEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.host.reportError(error);
      }
    }
    for (const queue of this.iterators) queue.push(event);
  }

  private flushBacklog(): void {
    const backlog = this.backlog;
    this.backlog = [];
    for (const event of backlog) this.hand(event);
  }

  /** Keeps the record's status and the open requests current. */
  private track(event: SessionEvent): void {
    this.record = { ...this.record, lastSeq: event.seq };
    switch (event.type) {
      case "status":
        this.record = { ...this.record, status: event.data.status };
        break;
      case "permission":
      case "question":
        this.open.set(event.data.requestId, event);
        if (!this.filling) queueMicrotask(() => this.dispatchRequests());
        break;
      case "answer":
        this.open.delete(event.data.requestId);
        break;
    }
  }

  // ---- approvals and questions -------------------------------------------------

  /** The `permission` and `question` events that wait for an answer, oldest first. */
  pending(): Envelope[] {
    return [...this.open.values()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * Answers every permission request of this session, pending ones included, with what
   * `handler` returns (`allow()`, `deny(message)`). A request answered elsewhere first is
   * skipped.
   */
  onPermission(handler: Handler<PermissionRequest>): () => void {
    this.permissionHandler = handler;
    this.dispatchRequests();
    return () => {
      if (this.permissionHandler === handler) this.permissionHandler = undefined;
    };
  }

  /** Answers every question of this session with what `handler` returns (`answers({...})`, `deny(message)`). */
  onQuestion(handler: Handler<QuestionRequest>): () => void {
    this.questionHandler = handler;
    this.dispatchRequests();
    return () => {
      if (this.questionHandler === handler) this.questionHandler = undefined;
    };
  }

  private dispatchRequests(): void {
    if (this.filling || this.closed) return;
    for (const envelope of this.pending()) {
      const requestId = requestIdOf(envelope)!;
      if (this.handled.has(requestId)) continue;
      if (envelope.type === "permission" && this.permissionHandler) {
        this.handled.add(requestId);
        void this.run(this.permissionHandler, { ...(envelope.data as PermissionData), event: envelope });
      } else if (envelope.type === "question" && this.questionHandler) {
        this.handled.add(requestId);
        void this.run(this.questionHandler, { ...(envelope.data as QuestionData), event: envelope });
      }
    }
  }

  private async run<R extends { requestId: string }>(handler: Handler<R>, request: R): Promise<void> {
    try {
      const decision = await handler(request);
      if (!this.open.has(request.requestId)) return;
      await this.answer(request.requestId, decision);
    } catch (error) {
      if (error instanceof AgentRuntimeError && ["request_closed", "request_not_found"].includes(error.code)) return;
      this.host.reportError(error);
    }
  }

  /** Answers a permission request or a question. */
  async answer(requestId: string, decision: Decision): Promise<{ seq: number }> {
    return this.host.transport.request("session:answer", { sessionId: this.id, requestId, ...decision });
  }

  /** Answers a question: question text → answer. */
  answerQuestion(requestId: string, given: Record<string, string>): Promise<{ seq: number }> {
    return this.answer(requestId, answers(given));
  }

  // ---- requests ---------------------------------------------------------------

  /** Sends a message; it runs now, or as the next turn if one is running. */
  send(content: Content, options: { messageId?: string } = {}): Promise<{ messageId: string; seq: number }> {
    return this.host.transport.request("session:message", { sessionId: this.id, content, ...options });
  }

  /** Ends the running turn; the agent stays alive. */
  async interrupt(): Promise<void> {
    await this.host.transport.request("session:interrupt", { sessionId: this.id });
  }

  /** Stops the session after its final sync. */
  async stop(): Promise<SessionRecord> {
    return this.update((await this.host.transport.request("session:stop", { sessionId: this.id })).session);
  }

  /** Brings a stopped or failed session back on a new sandbox. */
  async resume(): Promise<SessionRecord> {
    return this.update((await this.host.transport.request("session:resume", { sessionId: this.id })).session);
  }

  /** The session object, fresh. */
  async refresh(): Promise<SessionRecord> {
    return this.update((await this.host.transport.request("session:get", { sessionId: this.id })).session);
  }

  /** Replaces the session's budget (admins only). */
  async setBudget(budget: Budget): Promise<SessionRecord> {
    return this.update((await this.host.transport.request("session:budget", { sessionId: this.id, budget })).session);
  }

  /** The workspace's files. */
  async files(): Promise<FileEntry[]> {
    return (await this.host.transport.request("session:files", { sessionId: this.id })).files;
  }

  /** A workspace file's bytes. */
  download(path: string): Promise<Uint8Array> {
    return this.host.transport.download(this.id, path);
  }

  /** A new session that continues this one's conversation with a copy of its files; followed from seq 1. */
  async fork(): Promise<Session> {
    const { session } = await this.host.transport.request("session:fork", { sessionId: this.id });
    return this.host.adopt(session);
  }

  /** Deletes the session (record, log, files); its iterators end. */
  async delete(): Promise<void> {
    await this.host.transport.request("session:delete", { sessionId: this.id });
    this.close();
  }

  /** Stops following the session; its iterators end. */
  async leave(): Promise<void> {
    this.close();
    await this.host.transport.unfollow(this.id);
  }

  /** @internal Ends the iterators and forgets the session. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.iterators) queue.end();
    this.host.forget(this);
  }

  private update(record: SessionRecord): SessionRecord {
    // The events may be ahead of the answer: keep the status they gave.
    if (record.lastSeq >= this.lastSeq) this.record = record;
    return record;
  }
}

/** A turn's `result` line. */
export type ResultEvent = SessionEvent & { type: "agent" };

function isResult(event: SessionEvent): event is ResultEvent {
  return event.type === "agent" && event.data.type === "result";
}

function requestIdOf(envelope: Envelope): string | undefined {
  return (envelope.data as { requestId?: string } | null)?.requestId;
}
