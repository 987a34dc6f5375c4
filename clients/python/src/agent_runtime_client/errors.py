"""The errors the client raises."""

from __future__ import annotations

from typing import Any, Mapping


class AgentRuntimeError(Exception):
    """A request the runtime refused, with the protocol's error ``code``."""

    def __init__(self, error: Mapping[str, Any], status: int | None = None) -> None:
        super().__init__(str(error.get("message", "")))
        #: The protocol's error code (``not_found``, ``rate_limited``, ...).
        self.code: str = str(error.get("code", "internal"))
        #: The human-readable message.
        self.message: str = str(error.get("message", ""))
        #: Whole seconds to wait before trying again, when waiting helps.
        self.retry_after: int | None = error.get("retryAfter")
        #: The HTTP status, for a request made over REST.
        self.status = status

    def __repr__(self) -> str:
        return f"AgentRuntimeError(code={self.code!r}, message={self.message!r})"


class ConnectionClosedError(Exception):
    """The client is closed, or a request found no way to the runtime."""
