"""How the client reaches the runtime: Socket.IO (python-socketio's AsyncClient), or
REST with one Server-Sent Events stream per followed session (aiohttp)."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any, Awaitable, Callable, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import socketio  # type: ignore[import-untyped]

from .errors import AgentRuntimeError, ConnectionClosedError
from .protocol import Event as Envelope, Session as SessionRecord

#: A token, or a function (plain or async) that returns a fresh one for each connection.
TokenSource = str | Callable[[], str | Awaitable[str]] | None


async def resolve_token(token: TokenSource) -> str | None:
    if callable(token):
        value = token()
        return await value if inspect.isawaitable(value) else value
    return token


class Sink(Protocol):
    """Where a transport hands what it hears."""

    def event(self, envelope: Envelope) -> None:
        """An envelope, live or replayed; seqs may repeat or skip (the session fixes that)."""

    def reconnected(self) -> None:
        """The connection came back after it was lost: every followed session resyncs."""


class Transport(Protocol):
    """What the client needs from a transport."""

    kind: str

    async def request(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends one request; returns its ack without ``ok``, raises ``AgentRuntimeError``."""

    async def follow(self, session_id: str, last_seq: Callable[[], int]) -> SessionRecord | None:
        """Follows a session's events after ``last_seq()``, again after every interruption."""

    async def unfollow(self, session_id: str) -> None:
        """Stops following a session."""

    async def page(self, session_id: str, after_seq: int) -> dict[str, Any]:
        """One page of the log after ``after_seq``: ``{events, hasMore}``."""

    async def download(self, session_id: str, path: str) -> bytes:
        """A workspace file's bytes."""

    async def close(self) -> None:
        """Closes the connection and every feed."""


def _session_path(session_id: str, rest: str = "") -> str:
    return f"/v1/sessions/{quote(session_id, safe='')}{rest}"


def _file_path(session_id: str, path: str) -> str:
    return _session_path(session_id, "/files/" + "/".join(quote(p, safe="") for p in path.split("/")))


class Http:
    """REST calls with the client's token and the protocol's error bodies."""

    def __init__(self, base: str, token: TokenSource, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        token = await resolve_token(self.token)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            async with self.client.request(
                method,
                self.base + path,
                headers=await self.headers(),
                json=body,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise _error_of(response.status, text)
                return json.loads(text) if text else {}
        except aiohttp.ClientError as error:
            raise ConnectionClosedError(f"cannot reach the runtime: {error}") from error

    async def bytes(self, path: str) -> bytes:
        try:
            async with self.client.get(
                self.base + path,
                headers=await self.headers(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                data = await response.read()
                if response.status >= 400:
                    raise _error_of(response.status, data.decode(errors="replace"))
                return data
        except aiohttp.ClientError as error:
            raise ConnectionClosedError(f"cannot reach the runtime: {error}") from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_of(status: int, text: str) -> AgentRuntimeError:
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": "internal", "message": f"HTTP {status}: {text[:200]}"}
    return AgentRuntimeError(error, status)


class SocketTransport:
    """Socket.IO: requests with acks, ``session:event`` for live events, reconnection by
    python-socketio (with a fresh token each time)."""

    kind = "socketio"

    def __init__(self, url: str, token: TokenSource, timeout: float, reconnect_delay: float, sink: Sink) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.sink = sink
        self.http = Http(url, token, timeout)
        self.sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_delay=reconnect_delay,
            reconnection_delay_max=max(reconnect_delay, 5),
        )
        self.reconnect_delay = reconnect_delay
        self._options: dict[str, Any] = {}
        self._connected_once = False
        self._closed = False
        self._reconnecting: asyncio.Task[None] | None = None
        self.sio.on("session:event", self._on_event)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)

    async def _auth(self) -> dict[str, str]:
        return {"token": await resolve_token(self.token) or ""}

    async def _on_event(self, envelope: Envelope) -> None:
        self.sink.event(envelope)

    async def _on_connect(self) -> None:
        if self._connected_once:
            self.sink.reconnected()
        self._connected_once = True

    async def _on_disconnect(self, *_reason: Any) -> None:
        if not self._closed and self._reconnecting is None:
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        """Reconnects when python-socketio does not: it leaves a connection the server
        closed (a runtime shutting down) closed."""
        delay = self.reconnect_delay
        try:
            while not self._closed and not self.sio.connected:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
                # python-socketio's own reconnection is under way (a dropped transport).
                if self.sio.connected or getattr(self.sio, "_reconnect_task", None) is not None:
                    continue
                try:
                    await self.sio.connect(self.url, auth=self._auth, wait_timeout=self.timeout, **self._options)
                except socketio.exceptions.ConnectionError:
                    continue
        finally:
            self._reconnecting = None

    async def connect(self, **options: Any) -> None:
        """Connects; raises ``AgentRuntimeError`` ``unauthorized`` when the handshake is refused."""
        self._options = options
        try:
            await self.sio.connect(self.url, auth=self._auth, wait_timeout=self.timeout, **options)
        except socketio.exceptions.ConnectionError as error:
            await self.http.close()
            raise AgentRuntimeError({"code": "unauthorized", "message": str(error)}) from error

    async def request(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        try:
            ack = await self.sio.call(name, payload, timeout=self.timeout)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError) as error:
            raise ConnectionClosedError(f"{name} got no answer: {error}") from error
        if not ack.get("ok"):
            raise AgentRuntimeError(ack.get("error") or {})
        return {k: v for k, v in ack.items() if k != "ok"}

    async def follow(self, session_id: str, last_seq: Callable[[], int]) -> SessionRecord | None:
        # `session:join` puts the socket in the session's room; the replay goes to the
        # sink like live events. After a reconnect the client calls this again.
        page = await self.request("session:join", {"sessionId": session_id, "afterSeq": last_seq()})
        record: SessionRecord = page["session"]
        while True:
            for envelope in page["events"]:
                self.sink.event(envelope)
            if not page["hasMore"] or not page["events"]:
                return record
            after = page["events"][-1]["seq"]
            page = await self.request("session:join", {"sessionId": session_id, "afterSeq": after})

    async def unfollow(self, session_id: str) -> None:
        await self.request("session:leave", {"sessionId": session_id})

    async def page(self, session_id: str, after_seq: int) -> dict[str, Any]:
        page = await self.request("session:join", {"sessionId": session_id, "afterSeq": after_seq})
        return {"events": page["events"], "hasMore": page["hasMore"]}

    async def download(self, session_id: str, path: str) -> bytes:
        return await self.http.bytes(_file_path(session_id, path))

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        await self.sio.disconnect()
        await self.http.close()


class RestTransport:
    """REST for requests, one SSE stream per followed session; a stream that breaks is
    opened again with ``?after=<last seq>``, so it resumes where it stopped."""

    kind = "rest"

    def __init__(self, url: str, token: TokenSource, timeout: float, reconnect_delay: float, sink: Sink) -> None:
        self.http = Http(url, token, timeout)
        self.reconnect_delay = reconnect_delay
        self.sink = sink
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    async def request(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        http = self.http
        payload = dict(payload or {})
        sid = payload.pop("sessionId", None)
        if name == "session:create":
            payload.update({"sessionId": sid} if sid is not None else {})
            return await http.json("POST", "/v1/sessions", payload)
        if name == "session:list":
            query = urlencode({k: v for k, v in payload.items() if v is not None})
            return await http.json("GET", "/v1/sessions" + (f"?{query}" if query else ""))
        if name == "profile:list":
            return await http.json("GET", "/v1/profiles")
        if sid is None:
            raise AgentRuntimeError({"code": "invalid_request", "message": "`sessionId` is required"})
        if name == "session:message":
            return await http.json("POST", _session_path(sid, "/messages"), payload)
        if name == "session:join":
            record = await http.json("GET", _session_path(sid))
            after = payload.get("afterSeq")
            page = {"events": [], "hasMore": False} if after is None else await self.page(sid, after)
            return {"session": record["session"], **page}
        if name == "session:leave":
            await self.unfollow(sid)
            return {}
        if name == "session:answer":
            return await http.json("POST", _session_path(sid, "/answers"), payload)
        if name == "session:budget":
            return await http.json("PUT", _session_path(sid, "/budget"), payload.get("budget", {}))
        if name in ("session:interrupt", "session:stop", "session:resume", "session:fork"):
            answer = await http.json("POST", _session_path(sid, "/" + name.split(":")[1]))
            return {} if name == "session:interrupt" else answer
        if name == "session:delete":
            await http.json("DELETE", _session_path(sid))
            return {}
        if name == "session:get":
            return await http.json("GET", _session_path(sid))
        if name == "session:files":
            return await http.json("GET", _session_path(sid, "/files"))
        raise AgentRuntimeError({"code": "invalid_request", "message": f"unknown request {name}"})

    async def follow(self, session_id: str, last_seq: Callable[[], int]) -> SessionRecord | None:
        await self.unfollow(session_id)
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._streams[session_id] = asyncio.create_task(self._run(session_id, last_seq, opened))
        await opened
        return None

    async def _run(self, session_id: str, last_seq: Callable[[], int], opened: asyncio.Future[None]) -> None:
        delay = self.reconnect_delay
        while not self._closed:
            try:
                path = _session_path(session_id, f"/events?after={last_seq()}")
                async with self.http.client.get(
                    self.http.base + path,
                    headers=await self.http.headers({"Accept": "text/event-stream"}),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.http.timeout),
                ) as response:
                    if response.status >= 400:
                        raise _error_of(response.status, await response.text())
                    if not opened.done():
                        opened.set_result(None)
                    delay = self.reconnect_delay
                    await self._read(response)
            except AgentRuntimeError as error:
                if not opened.done():
                    opened.set_exception(error)
                    return
                if error.code in ("not_found", "unauthorized"):
                    return
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as error:
                if not opened.done():
                    opened.set_exception(ConnectionClosedError(f"cannot reach the runtime: {error}"))
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        """Hands each frame's ``data`` to the sink; lines may be of any length."""
        buffer = b""
        data: list[str] = []
        async for chunk in response.content.iter_any():
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode().rstrip("\r")
                if not line:
                    if data:
                        self.sink.event(json.loads("\n".join(data)))
                    data = []
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))

    async def unfollow(self, session_id: str) -> None:
        task = self._streams.pop(session_id, None)
        if task is not None:
            task.cancel()

    async def page(self, session_id: str, after_seq: int) -> dict[str, Any]:
        return await self.http.json("GET", _session_path(session_id, f"/events?after={after_seq}&limit=1000"))

    async def download(self, session_id: str, path: str) -> bytes:
        return await self.http.bytes(_file_path(session_id, path))

    async def close(self) -> None:
        self._closed = True
        for task in self._streams.values():
            task.cancel()
        self._streams.clear()
        await self.http.close()
