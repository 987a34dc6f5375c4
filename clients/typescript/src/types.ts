// The SDK's names for the protocol's types (src/protocol.ts, generated from the
// protocol's JSON Schema), and the maps from each request to its payload and its ack.

import type * as P from "./protocol.js";

export type {
  AgentData,
  AnswerData,
  AnswerRequest,
  Budget,
  ErrorCode,
  ErrorData,
  Event,
  EventErrorCode,
  FileData,
  ForkedFrom,
  InputData,
  JoinRequest,
  PermissionData,
  Profile,
  QuestionData,
  SessionBudget,
  SessionIdRequest,
  SessionStatus,
  StatusData,
  Usage,
} from "./protocol.js";

/** A `session:event` envelope; `type` narrows `data`. */
export type SessionEvent = P.Event;
/** Any envelope (the protocol's `Event`). */
export type Envelope = P.Event;
/** The protocol's session object. */
export type SessionRecord = P.Session;
/** A workspace file of `session:files`. */
export type FileEntry = P.WorkspaceFile;
/** The protocol's error object: `{ code, message, retryAfter? }`. */
export type ErrorObject = P.Error;
/** A user message: a string, or Anthropic content blocks. */
export type Content = P.MessageContent;
/** `session:create`'s payload. */
export type CreateRequest = P.CreateSessionRequest;
/** `session:message`'s payload. */
export type MessageRequest = P.SendMessageRequest;
/** `session:list`'s filter. */
export type ListRequest = P.ListSessionsRequest;

/** A request's name (every Socket.IO request of the protocol). */
export type RequestName = keyof P.SocketRequests;
/** What a request sends. */
export type RequestPayload<K extends RequestName> = P.SocketRequests[K]["request"];
/** What a successful request's ack carries besides `ok: true`. */
export type AckOf<K extends RequestName> = Omit<P.SocketRequests[K]["ack"], "ok">;
