import type { ErrorCode, ErrorObject } from "./types.js";

/** A request the runtime refused: its error object's `code`, `message` and `retryAfter`. */
export class AgentRuntimeError extends Error {
  /** The protocol's error code (`not_found`, `rate_limited`, ...). */
  readonly code: ErrorCode;
  /** Whole seconds to wait before trying again, when waiting helps. */
  readonly retryAfter?: number;
  /** The HTTP status, for a request made over REST. */
  readonly status?: number;

  constructor(error: ErrorObject, status?: number) {
    super(error.message);
    this.name = "AgentRuntimeError";
    this.code = error.code;
    if (error.retryAfter !== undefined && error.retryAfter !== null) this.retryAfter = error.retryAfter;
    if (status !== undefined) this.status = status;
  }
}

/** The connection is closed (by `close()`), or a request found no way to the runtime. */
export class ConnectionClosedError extends Error {
  constructor(message = "the client is closed") {
    super(message);
    this.name = "ConnectionClosedError";
  }
}
