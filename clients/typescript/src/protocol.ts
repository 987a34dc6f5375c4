// The protocol's types. Written by hand until docs/protocol.schema.json exists; then
// generated from it by scripts/generate.mjs.

export type ErrorCode =
  | "unauthorized"
  | "origin_forbidden"
  | "host_forbidden"
  | "not_found"
  | "invalid_request"
  | "profile_not_found"
  | "profile_invalid"
  | "metadata_invalid"
  | "capacity_exceeded"
  | "quota_exceeded"
  | "rate_limited"
  | "file_too_large"
  | "sandbox_failed"
  | "agent_failed"
  | "storage_unavailable"
  | "request_not_found"
  | "request_closed"
  | "budget_exceeded"
  | "forbidden"
  | "internal";

export interface ErrorObject {
  code: ErrorCode;
  message: string;
  retryAfter?: number;
}

export type SessionStatus = "starting" | "idle" | "running" | "waiting" | "stopping" | "stopped" | "failed";

export interface Budget {
  maxCostUsd?: number | null;
  maxTokens?: number | null;
  maxTurns?: number | null;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  turns: number;
}

export interface Envelope {
  sessionId: string;
  seq: number;
  at: string;
  type: string;
  data: unknown;
}

export interface Session {
  id: string;
  agentType: string;
  status: SessionStatus;
  metadata: unknown;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
  lastSeq: number;
  agentSessionId: string | null;
  usage: Usage;
  budget: Budget;
  error: { code: string; message: string } | null;
  pending: Envelope[];
}

export interface FileEntry {
  path: string;
  size: number;
  modifiedAt: string;
}

export interface Profile {
  name: string;
  description: string;
  metadataSchema: unknown;
}

export type Content = string | Record<string, unknown>[];

export interface CreateRequest {
  agentType: string;
  metadata?: unknown;
  sessionId?: string;
  message?: Content;
  owner?: string;
  budget?: Budget;
}
export interface MessageRequest {
  sessionId: string;
  content: Content;
  messageId?: string;
}
export interface JoinRequest {
  sessionId: string;
  afterSeq?: number;
}
export interface SessionIdRequest {
  sessionId: string;
}
export interface AnswerRequest {
  sessionId: string;
  requestId: string;
  behavior: "allow" | "deny";
  message?: string;
  input?: Record<string, unknown>;
  always?: boolean;
  answers?: Record<string, string>;
}
export interface BudgetRequest {
  sessionId: string;
  budget: Budget;
}
export interface ListRequest {
  agentType?: string;
  status?: SessionStatus;
  limit?: number;
  cursor?: string;
}

export interface StatusData {
  status: SessionStatus;
  reason?: string;
}
export interface InputData {
  messageId: string;
  content: Content;
}
export interface FileData {
  path: string;
  change: "created" | "modified" | "deleted";
  size?: number;
}
export interface ErrorData {
  code: string;
  message: string;
  fatal: boolean;
  path?: string;
}
export interface PermissionData {
  requestId: string;
  tool: string;
  input: Record<string, unknown>;
  toolUseId?: string;
  suggestions?: unknown[];
  description?: string;
  expiresAt: string;
}
export interface QuestionItem {
  question: string;
  header: string;
  options: { label: string; description: string }[];
  multiSelect: boolean;
}
export interface QuestionData {
  requestId: string;
  toolUseId?: string;
  questions: QuestionItem[];
  expiresAt: string;
}
export interface AnswerData {
  requestId: string;
  outcome: "allow" | "deny" | "withdrawn" | "expired";
  by?: string;
  message?: string;
  input?: Record<string, unknown>;
  always?: boolean;
  answers?: Record<string, string>;
  reason?: string;
}
