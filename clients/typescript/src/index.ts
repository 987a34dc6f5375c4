// agent-runtime's client: sessions over Socket.IO (or REST + SSE), every event exactly
// once and in seq order across reconnects, typed requests, approval and question helpers.

export { AgentRuntimeClient, connect, type ConnectOptions } from "./client.js";
export { AgentRuntimeError, ConnectionClosedError } from "./errors.js";
export type { TokenSource } from "./http.js";
export {
  allow,
  answers,
  deny,
  Session,
  type Decision,
  type PermissionRequest,
  type QuestionRequest,
  type ResultEvent,
} from "./session.js";
export type { EventPage, Transport } from "./transport.js";
export type * from "./types.js";
export type * as protocol from "./protocol.js";
