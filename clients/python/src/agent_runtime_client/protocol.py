"""The protocol's types. Written by hand until docs/protocol.schema.json exists; then
generated from it by scripts/generate.py."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


ErrorCode = str
SessionStatus = Literal["starting", "idle", "running", "waiting", "stopping", "stopped", "failed"]


class Envelope(TypedDict):
    sessionId: str
    seq: int
    at: str
    type: str
    data: Any


class Usage(TypedDict):
    inputTokens: int
    outputTokens: int
    costUsd: float
    turns: int


class Budget(TypedDict, total=False):
    maxCostUsd: float | None
    maxTokens: int | None
    maxTurns: int | None


class Session(TypedDict):
    id: str
    agentType: str
    status: SessionStatus
    metadata: Any
    createdAt: str
    updatedAt: str
    lastActivityAt: str
    lastSeq: int
    agentSessionId: str | None
    usage: Usage
    budget: Budget
    error: Any
    pending: list[Envelope]


class FileEntry(TypedDict):
    path: str
    size: int
    modifiedAt: str


class Profile(TypedDict):
    name: str
    description: str
    metadataSchema: Any


class CreateRequest(TypedDict):
    agentType: str
    metadata: NotRequired[Any]
    sessionId: NotRequired[str]
    message: NotRequired[Any]
    owner: NotRequired[str]
    budget: NotRequired[Budget]
