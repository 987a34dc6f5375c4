"""One followed session: its events exactly once, in seq order, and its requests."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, TypedDict

from .errors import AgentRuntimeError
from .protocol import Budget, Event as Envelope, Session as SessionRecord, WorkspaceFile as FileEntry

if TYPE_CHECKING:
    from .client import AgentRuntimeClient


class Decision(TypedDict, total=False):
    """How a permission request or a question is answered."""

    behavior: str
    message: str
    input: dict[str, Any]
    always: bool
    answers: dict[str, str]


def allow(*, input: dict[str, Any] | None = None, always: bool = False) -> Decision:
    """Lets the tool call run (with ``input`` instead of the agent's; ``always``: for the
    rest of the agent's process)."""
    decision: Decision = {"behavior": "allow"}
    if input is not None:
        decision["input"] = input
    if always:
        decision["always"] = True
    return decision


def deny(message: str | None = None) -> Decision:
    """Refuses the tool call, or declines a question; the model gets ``message``."""
    return {"behavior": "deny"} if message is None else {"behavior": "deny", "message": message}


def answers(given: dict[str, str]) -> Decision:
    """Answers a question: question text → an option's label, or free text."""
    return {"behavior": "allow", "answers": given}


#: A request handler: the ``permission`` or ``question`` envelope in, a decision out.
Handler = Callable[[Envelope], "Decision | Awaitable[Decision]"]
Listener = Callable[[Envelope], Any]


def request_id(event: Envelope) -> str:
    """The ``requestId`` of a ``permission``, ``question`` or ``answer`` event."""
    data: dict[str, Any] = dict(event["data"])
    return str(data["requestId"])


def is_result(event: Envelope) -> bool:
    """Whether an event is a turn's ``result`` line."""
    return event["type"] == "agent" and event["data"].get("type") == "result"


class Session:
    """A session the client follows.

    Its events reach the caller in seq order, each exactly once: duplicates (a replay
    overlapping live events) are dropped, and an event that comes after a gap waits
    until the gap is filled from the log. After every reconnect the client re-joins with
    the last seq delivered. Events delivered while nobody listens are kept for the first
    listener (``on_event`` or ``events()``).
    """

    def __init__(self, client: AgentRuntimeClient, record: SessionRecord, last_seq: int) -> None:
        self._client = client
        #: The session's id.
        self.id: str = record["id"]
        #: The session object as last heard (status and ``lastSeq`` follow the events).
        self.record: SessionRecord = record
        #: The seq of the last event handed to the caller.
        self.last_seq = last_seq
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[Envelope | None]] = []
        self._watchers: list[Callable[[Envelope], None]] = []
        self._backlog: list[Envelope] = []
        self._recent: list[Envelope] = []
        self._early: dict[int, Envelope] = {}
        self._filling = False
        self._fill_again = False
        self._open: dict[str, Envelope] = {}
        self._handled: set[str] = set()
        self._permission_handler: Handler | None = None
        self._question_handler: Handler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        for envelope in record.get("pending") or []:
            if envelope["seq"] <= last_seq:
                self._open[request_id(envelope)] = envelope

    # ---- events -----------------------------------------------------------------

    def on_event(self, listener: Listener) -> Callable[[], None]:
        """Calls ``listener`` with every event from now on (and the backlog, if it is the
        first listener); returns a function that removes it."""
        self._listeners.append(listener)
        self._flush_backlog()
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def events(self) -> AsyncIterator[Envelope]:
        """The events from now on (and the backlog, if first) until the session is closed."""
        queue: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._queues.append(queue)
        self._flush_backlog()
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            if queue in self._queues:
                self._queues.remove(queue)

    def __aiter__(self) -> AsyncIterator[Envelope]:
        return self.events()

    async def next(self, predicate: Callable[[Envelope], bool] = lambda _: True, after: int | None = None) -> Envelope:
        """The first event with a seq above ``after`` that ``predicate`` accepts: among the
        last 1000 delivered, or the next ones. Without ``after``, the next one delivered."""
        if after is not None:
            for event in self._recent:
                if event["seq"] > after and predicate(event):
                    return event
        found: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()

        def watch(event: Envelope) -> None:
            if not found.done() and (after is None or event["seq"] > after) and predicate(event):
                found.set_result(event)

        self._watchers.append(watch)
        try:
            return await found
        finally:
            self._watchers.remove(watch)

    async def result(self, input_seq: int) -> Envelope:
        """The ``result`` event of the turn whose ``input`` event has seq ``input_seq``."""
        return await self.next(is_result, input_seq)

    async def turn(self, content: Any, *, message_id: str | None = None) -> Envelope:
        """Sends a message and returns the ``result`` event of the turn it started."""
        results: list[Envelope] = []

        def collect(event: Envelope) -> None:
            if is_result(event):
                results.append(event)

        self._watchers.append(collect)
        try:
            sent = await self.send(content, message_id=message_id)
            early = next((e for e in results if e["seq"] > sent["seq"]), None)
            return early if early is not None else await self.result(sent["seq"])
        finally:
            self._watchers.remove(collect)

    def _ingest(self, envelope: Envelope) -> None:
        seq = envelope["seq"]
        if self._closed or seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            self._early[seq] = envelope
            self._spawn(self._fill())
            return
        self._deliver(envelope)
        while (following := self._early.pop(self.last_seq + 1, None)) is not None:
            self._deliver(following)
        for stale in [s for s in self._early if s <= self.last_seq]:
            del self._early[stale]

    async def _fill(self) -> None:
        """Reads the log after the last delivered seq until the gap is closed."""
        if self._filling:
            self._fill_again = True
            return
        self._filling = True
        try:
            while True:
                self._fill_again = False
                while True:
                    before = self.last_seq
                    page = await self._client.transport.page(self.id, self.last_seq)
                    for envelope in page["events"]:
                        self._ingest(envelope)
                    if not page["hasMore"] or self.last_seq == before:
                        break
                if not self._fill_again or self._closed:
                    break
        except Exception as error:  # the connection is gone: the reconnect fills the gap
            self._client._report(error)
        finally:
            self._filling = False
        self._dispatch_requests()

    async def _resync(self) -> None:
        """Follows the session again from the last delivered seq (after a reconnect)."""
        record = await self._client.transport.follow(self.id, lambda: self.last_seq)
        if record is not None:
            self.record = {**record, "lastSeq": max(record["lastSeq"], self.last_seq)}
            if record["lastSeq"] > self.last_seq:
                await self._fill()

    def _deliver(self, event: Envelope) -> None:
        self.last_seq = event["seq"]
        self._track(event)
        self._recent.append(event)
        if len(self._recent) > 1000:
            self._recent = self._recent[-500:]
        for watcher in list(self._watchers):
            watcher(event)
        if not self._listeners and not self._queues:
            self._backlog.append(event)
        else:
            self._hand(event)

    def _hand(self, event: Envelope) -> None:
        for listener in list(self._listeners):
            try:
                outcome = listener(event)
                if inspect.isawaitable(outcome):
                    self._spawn(outcome)
            except Exception as error:
                self._client._report(error)
        for queue in self._queues:
            queue.put_nowait(event)

    def _flush_backlog(self) -> None:
        backlog, self._backlog = self._backlog, []
        for event in backlog:
            self._hand(event)

    def _track(self, event: Envelope) -> None:
        self.record = {**self.record, "lastSeq": event["seq"]}
        if event["type"] == "status":
            self.record = {**self.record, "status": event["data"]["status"]}
        elif event["type"] == "permission" or event["type"] == "question":
            self._open[event["data"]["requestId"]] = event
            if not self._filling:
                asyncio.get_running_loop().call_soon(self._dispatch_requests)
        elif event["type"] == "answer":
            self._open.pop(event["data"]["requestId"], None)

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        async def run() -> Any:
            try:
                return await awaitable
            except Exception as error:
                self._client._report(error)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- approvals and questions ------------------------------------------------

    def pending(self) -> list[Envelope]:
        """The ``permission`` and ``question`` events waiting for an answer, oldest first."""
        return sorted(self._open.values(), key=lambda e: e["seq"])

    def on_permission(self, handler: Handler) -> None:
        """Answers every permission request of this session, pending ones included, with
        what ``handler`` returns (``allow()``, ``deny(message)``)."""
        self._permission_handler = handler
        self._dispatch_requests()

    def on_question(self, handler: Handler) -> None:
        """Answers every question of this session with what ``handler`` returns
        (``answers({...})``, ``deny(message)``)."""
        self._question_handler = handler
        self._dispatch_requests()

    def _dispatch_requests(self) -> None:
        if self._filling or self._closed:
            return
        for envelope in self.pending():
            waiting = request_id(envelope)
            if waiting in self._handled:
                continue
            handler = self._permission_handler if envelope["type"] == "permission" else self._question_handler
            if handler is not None:
                self._handled.add(waiting)
                self._spawn(self._run_handler(handler, envelope))

    async def _run_handler(self, handler: Handler, envelope: Envelope) -> None:
        waiting = request_id(envelope)
        decision = handler(envelope)
        if inspect.isawaitable(decision):
            decision = await decision
        if waiting not in self._open:
            return
        try:
            await self.answer(waiting, decision)
        except AgentRuntimeError as error:
            if error.code not in ("request_closed", "request_not_found"):
                raise

    async def answer(self, request_id: str, decision: Decision) -> dict[str, Any]:
        """Answers a permission request or a question; returns ``{seq}``."""
        return await self._request("session:answer", requestId=request_id, **decision)

    async def answer_question(self, request_id: str, given: dict[str, str]) -> dict[str, Any]:
        """Answers a question: question text → answer."""
        return await self.answer(request_id, answers(given))

    # ---- requests ---------------------------------------------------------------

    async def _request(self, name: str, **payload: Any) -> dict[str, Any]:
        return await self._client.transport.request(name, {"sessionId": self.id, **payload})

    async def send(self, content: Any, *, message_id: str | None = None) -> dict[str, Any]:
        """Sends a message; it runs now, or as the next turn. Returns ``{messageId, seq}``."""
        extra = {} if message_id is None else {"messageId": message_id}
        return await self._request("session:message", content=content, **extra)

    async def interrupt(self) -> None:
        """Ends the running turn; the agent stays alive."""
        await self._request("session:interrupt")

    async def stop(self) -> SessionRecord:
        """Stops the session after its final sync."""
        return self._update((await self._request("session:stop"))["session"])

    async def resume(self) -> SessionRecord:
        """Brings a stopped or failed session back on a new sandbox."""
        return self._update((await self._request("session:resume"))["session"])

    async def refresh(self) -> SessionRecord:
        """The session object, fresh."""
        return self._update((await self._request("session:get"))["session"])

    async def set_budget(self, budget: Budget) -> SessionRecord:
        """Replaces the session's budget (admins only)."""
        return self._update((await self._request("session:budget", budget=budget))["session"])

    async def files(self) -> list[FileEntry]:
        """The workspace's files."""
        files: list[FileEntry] = (await self._request("session:files"))["files"]
        return files

    async def download(self, path: str) -> bytes:
        """A workspace file's bytes."""
        return await self._client.transport.download(self.id, path)

    async def fork(self) -> Session:
        """A new session that continues this one's conversation with a copy of its files."""
        record = (await self._request("session:fork"))["session"]
        return await self._client._follow(record, 0)

    async def delete(self) -> None:
        """Deletes the session (record, log, files); its iterators end."""
        await self._request("session:delete")
        self._close()

    async def leave(self) -> None:
        """Stops following the session; its iterators end."""
        self._close()
        await self._client.transport.unfollow(self.id)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(None)
        self._client._forget(self)

    def _update(self, record: SessionRecord) -> SessionRecord:
        if record["lastSeq"] >= self.last_seq:
            self.record = record
        return record
