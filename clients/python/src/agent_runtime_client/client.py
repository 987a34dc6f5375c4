"""The client: a connection to the runtime and the sessions it follows."""

from __future__ import annotations

import builtins
from typing import Any, Callable

from .protocol import Budget, Event as Envelope, Profile, Session as SessionRecord
from .session import Session
from .transport import RestTransport, SocketTransport, TokenSource, Transport


async def connect(
    url: str,
    *,
    token: TokenSource = None,
    transport: str = "socketio",
    request_timeout: float = 60.0,
    reconnect_delay: float = 0.5,
    on_error: Callable[[BaseException], None] | None = None,
    **socketio_options: Any,
) -> AgentRuntimeClient:
    """Connects to the runtime at ``url`` (``http://host:port``).

    ``token`` is an API key, a JWT or the shared secret, or a function (plain or async)
    called for each (re)connection. ``transport`` is ``"socketio"`` (the default) or
    ``"rest"`` (REST requests and SSE streams). Raises ``AgentRuntimeError``
    ``unauthorized`` when the token is refused (Socket.IO). Extra keyword arguments go
    to python-socketio's ``AsyncClient.connect`` (``transports=["websocket"]``, say).
    """
    client = AgentRuntimeClient(on_error)
    if transport == "rest":
        client.transport = RestTransport(url, token, request_timeout, reconnect_delay, client)
    elif transport == "socketio":
        socket = SocketTransport(url, token, request_timeout, reconnect_delay, client)
        await socket.connect(**socketio_options)
        client.transport = socket
    else:
        raise ValueError(f"unknown transport {transport!r}: socketio or rest")
    return client


class AgentRuntimeClient:
    """A connection to the runtime and the sessions it follows. Use ``connect``; an
    ``async with`` block closes it."""

    transport: Transport

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        #: The sessions this client follows, by id.
        self.sessions: dict[str, Session] = {}
        self._on_error = on_error
        self._joining: dict[str, list[Envelope]] = {}
        self._reconnect_listeners: list[Callable[[], Any]] = []

    # The transport's sink.
    def event(self, envelope: Envelope) -> None:
        session = self.sessions.get(envelope["sessionId"])
        if session is not None:
            session._ingest(envelope)
        elif envelope["sessionId"] in self._joining:
            self._joining[envelope["sessionId"]].append(envelope)

    def reconnected(self) -> None:
        for session in list(self.sessions.values()):
            session._spawn(session._resync())
        for listener in self._reconnect_listeners:
            listener()

    async def request(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends any request of the protocol as it is; returns its ack without ``ok``."""
        return await self.transport.request(name, payload)

    async def create(
        self,
        agent_type: str,
        *,
        metadata: Any = None,
        message: Any = None,
        session_id: str | None = None,
        owner: str | None = None,
        budget: Budget | None = None,
    ) -> Session:
        """Creates a session and follows it from seq 1."""
        payload: dict[str, Any] = {"agentType": agent_type}
        for key, value in (
            ("metadata", metadata),
            ("message", message),
            ("sessionId", session_id),
            ("owner", owner),
            ("budget", budget),
        ):
            if value is not None:
                payload[key] = value
        record = (await self.transport.request("session:create", payload))["session"]
        return await self._follow(record, 0)

    async def join(self, session_id: str, *, after_seq: int | None = None) -> Session:
        """Follows an existing session: its events after ``after_seq`` (by default only
        events from now on), then live ones."""
        if session_id in self.sessions:
            return self.sessions[session_id]
        self._joining[session_id] = []
        try:
            record = (await self.transport.request("session:get", {"sessionId": session_id}))["session"]
            return await self._follow(record, record["lastSeq"] if after_seq is None else after_seq)
        finally:
            self._joining.pop(session_id, None)

    async def _follow(self, record: SessionRecord, after_seq: int) -> Session:
        if record["id"] in self.sessions:
            return self.sessions[record["id"]]
        session = Session(self, record, after_seq)
        self.sessions[session.id] = session
        for envelope in self._joining.get(session.id, []):
            session._ingest(envelope)
        try:
            await session._resync()
        except BaseException:
            session._close()
            raise
        return session

    async def list(
        self, *, agent_type: str | None = None, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """The caller's sessions (every session for an admin): ``{sessions, nextCursor}``."""
        filters = {"agentType": agent_type, "status": status, "limit": limit, "cursor": cursor}
        return await self.transport.request("session:list", {k: v for k, v in filters.items() if v is not None})

    async def get(self, session_id: str) -> SessionRecord:
        """A session object, without following the session."""
        record: SessionRecord = (await self.transport.request("session:get", {"sessionId": session_id}))["session"]
        return record

    async def profiles(self) -> builtins.list[Profile]:
        """The profiles sessions may be created of."""
        profiles: builtins.list[Profile] = (await self.transport.request("profile:list", {}))["profiles"]
        return profiles

    def on_reconnect(self, listener: Callable[[], Any]) -> None:
        """Calls ``listener`` after each reconnect, once the sessions are being resynced."""
        self._reconnect_listeners.append(listener)

    async def close(self) -> None:
        """Closes the connection; every session's iterators end."""
        for session in list(self.sessions.values()):
            session._close()
        await self.transport.close()

    async def __aenter__(self) -> AgentRuntimeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]

    def _report(self, error: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(error)


__all__ = ["AgentRuntimeClient", "connect"]
