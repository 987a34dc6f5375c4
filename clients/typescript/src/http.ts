import { AgentRuntimeError, ConnectionClosedError } from "./errors.js";
import type { ErrorObject } from "./types.js";

/** A token, or a function that returns a fresh one (called for every connection). */
export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(token: TokenSource | undefined): Promise<string | undefined> {
  return typeof token === "function" ? await token() : token;
}

/** REST calls with the client's token and the protocol's error bodies. */
export class Http {
  constructor(
    readonly base: string,
    private readonly token: TokenSource | undefined,
    private readonly timeoutMs: number,
  ) {}

  async headers(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const token = await resolveToken(this.token);
    return token ? { authorization: `Bearer ${token}`, ...extra } : extra;
  }

  /** Sends a request and returns the answer's JSON body (`{}` for 204). */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers = await this.headers(body === undefined ? {} : { "content-type": "application/json" });
    const response = await this.fetch(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (response.status === 204) return {} as T;
    const text = await response.text();
    if (!response.ok) throw errorOf(response.status, text);
    return JSON.parse(text) as T;
  }

  /** A GET whose answer is bytes (a workspace file). */
  async bytes(path: string): Promise<Uint8Array> {
    const response = await this.fetch(path, {
      headers: await this.headers(),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!response.ok) throw errorOf(response.status, await response.text());
    return new Uint8Array(await response.arrayBuffer());
  }

  /** A GET kept open: the response, for its body stream. */
  async stream(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const response = await this.fetch(path, { headers: await this.headers(headers), signal });
    if (!response.ok) throw errorOf(response.status, await response.text());
    return response;
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(new URL(path, this.base), init);
    } catch (error) {
      throw new ConnectionClosedError(`cannot reach the runtime: ${String((error as Error).cause ?? error)}`);
    }
  }
}

/** The `AgentRuntimeError` of an error answer. */
function errorOf(status: number, text: string): AgentRuntimeError {
  let error: ErrorObject | undefined;
  try {
    error = (JSON.parse(text) as { error?: ErrorObject }).error;
  } catch {
    error = undefined;
  }
  return new AgentRuntimeError(error ?? { code: "internal", message: `HTTP ${status}: ${text.slice(0, 200)}` }, status);
}

/** Reads a Server-Sent Events body and calls `onFrame` with each frame's `data`. */
export async function readSse(body: ReadableStream<Uint8Array>, onFrame: (data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let blank: RegExpExecArray | null;
    while ((blank = BLANK_LINE.exec(buffer)) !== null) {
      const frame = buffer.slice(0, blank.index);
      buffer = buffer.slice(blank.index + blank[0].length);
      const data = frame
        .split(/\r\n|\r|\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) onFrame(data);
    }
  }
}

/** The end of a frame: a line break followed by an empty line. */
const BLANK_LINE = /(?:\r\n|\r|\n)(?:\r\n|\r|\n)/;
