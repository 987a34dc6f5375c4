"""agent-runtime's client: sessions over Socket.IO (or REST + SSE), every event exactly
once and in seq order across reconnects, typed requests, approval and question helpers."""

from . import protocol
from .client import AgentRuntimeClient, connect
from .errors import AgentRuntimeError, ConnectionClosedError
from .session import Decision, Session, allow, answers, deny, is_result

__all__ = [
    "AgentRuntimeClient",
    "AgentRuntimeError",
    "ConnectionClosedError",
    "Decision",
    "Session",
    "allow",
    "answers",
    "connect",
    "deny",
    "is_result",
    "protocol",
]
