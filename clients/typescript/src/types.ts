// The SDK's names for the protocol's types (src/protocol.ts, generated from the
// protocol's JSON Schema), and the maps from each request to its payload and its ack.

import type * as P from "./protocol.js";

export type {
  AnswerData,
  AnswerRequest,
  Budget,
  BudgetRequest,
  Content,
  CreateRequest,
  Envelope,
  ErrorCode,
  ErrorData,
  ErrorObject,
  FileData,
  FileEntry,
  InputData,
  JoinRequest,
  ListRequest,
  MessageRequest,
  PermissionData,
  Profile,
  QuestionData,
  QuestionItem,
  Session as SessionRecord,
  SessionIdRequest,
  SessionStatus,
  StatusData,
  Usage,
} from "./protocol.js";

/** An envelope whose `type` and `data` belong together. */
export type Typed<T extends string, D> = Omit<P.Envelope, "type" | "data"> & { type: T; data: D };

/** A `session:event` envelope, narrowed by `type`. */
export type SessionEvent =
  | Typed<"status", P.StatusData>
  | Typed<"input", P.InputData>
  | Typed<"agent", Record<string, unknown> & { type?: string }>
  | Typed<"file", P.FileData>
  | Typed<"error", P.ErrorData>
  | Typed<"permission", P.PermissionData>
  | Typed<"question", P.QuestionData>
  | Typed<"answer", P.AnswerData>;

/** Every Socket.IO request: its payload and what its ack carries besides `ok`. */
export interface Requests {
  "session:create": [P.CreateRequest, { session: P.Session }];
  "session:message": [P.MessageRequest, { messageId: string; seq: number }];
  "session:join": [P.JoinRequest, { session: P.Session; events: P.Envelope[]; hasMore: boolean }];
  "session:leave": [P.SessionIdRequest, Record<string, never>];
  "session:answer": [P.AnswerRequest, { seq: number }];
  "session:budget": [P.BudgetRequest, { session: P.Session }];
  "session:interrupt": [P.SessionIdRequest, Record<string, never>];
  "session:stop": [P.SessionIdRequest, { session: P.Session }];
  "session:resume": [P.SessionIdRequest, { session: P.Session }];
  "session:delete": [P.SessionIdRequest, Record<string, never>];
  "session:get": [P.SessionIdRequest, { session: P.Session }];
  "session:fork": [P.SessionIdRequest, { session: P.Session }];
  "session:list": [P.ListRequest, { sessions: P.Session[]; nextCursor: string | null }];
  "session:files": [P.SessionIdRequest, { files: P.FileEntry[] }];
  "profile:list": [Record<string, never>, { profiles: P.Profile[] }];
}

/** A request's name. */
export type RequestName = keyof Requests;
/** What a request sends. */
export type RequestPayload<K extends RequestName> = Requests[K][0];
/** What a successful request's ack carries (besides `ok: true`). */
export type AckOf<K extends RequestName> = Requests[K][1];
