"""The SDK's ordering guarantees, driven through a transport that hands events over in
the worst orders a network and a replay can produce: duplicates, gaps, a replay
overlapping live events, a reconnect. ``python -m unittest discover clients/python/tests``."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any, Callable

from agent_runtime_client import AgentRuntimeClient, allow

ID = "s1"


def envelope(seq: int, kind: str = "agent", data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"sessionId": ID, "seq": seq, "at": "2026-01-01T00:00:00.000Z", "type": kind, "data": data or {"type": "assistant"}}


def record(last_seq: int) -> dict[str, Any]:
    return {"id": ID, "agentType": "t", "status": "idle", "lastSeq": last_seq, "pending": []}


class LogTransport:
    """A transport over an in-memory log, two events a page."""

    kind = "socketio"

    def __init__(self, client: AgentRuntimeClient, log: list[dict[str, Any]]) -> None:
        self.client = client
        self.log = log
        self.answered: list[dict[str, Any]] = []

    async def request(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        if name == "session:create":
            return {"session": record(0)}
        if name == "session:answer":
            self.answered.append(payload)
            return {"seq": len(self.log) + 1}
        raise AssertionError(name)

    async def follow(self, session_id: str, last_seq: Callable[[], int]) -> dict[str, Any]:
        for event in [e for e in self.log if e["seq"] > last_seq()]:
            self.client.event(event)  # type: ignore[arg-type]
        return record(len(self.log))

    async def unfollow(self, session_id: str) -> None:
        pass

    async def page(self, session_id: str, after_seq: int) -> dict[str, Any]:
        events = [e for e in self.log if e["seq"] > after_seq][:2]
        return {"events": events, "hasMore": any(e["seq"] > after_seq + 2 for e in self.log)}

    async def close(self) -> None:
        pass


class SessionOrder(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.errors: list[BaseException] = []
        self.client = AgentRuntimeClient(on_error=self.errors.append)
        self.transport = LogTransport(self.client, [])
        self.client.transport = self.transport  # type: ignore[assignment]

    def hear(self, *seqs: int) -> None:
        for seq in seqs:
            self.client.event(self.transport.log[seq - 1])  # type: ignore[arg-type]

    async def test_duplicates_are_dropped_and_gaps_filled_in_order(self) -> None:
        session = await self.client.create("t")
        self.transport.log.extend(envelope(seq) for seq in range(1, 10))
        seen: list[int] = []
        session.on_event(lambda e: seen.append(e["seq"]))
        self.hear(1, 2, 2, 1, 6, 3, 9, 4)
        await asyncio.sleep(0.01)
        self.assertEqual(seen, list(range(1, 10)))
        self.assertEqual(self.errors, [])

    async def test_a_reconnect_hands_over_only_what_is_new(self) -> None:
        self.transport.log.extend(envelope(seq) for seq in range(1, 7))
        session = await self.client.create("t")
        seen: list[int] = []
        session.on_event(lambda e: seen.append(e["seq"]))
        self.hear(1, 2, 3)
        self.transport.log.extend([envelope(7), envelope(8)])
        self.client.reconnected()
        await asyncio.sleep(0.01)
        self.hear(7, 8)
        self.assertEqual(seen, list(range(1, 9)))

    async def test_a_permission_handler_answers_each_open_request_once(self) -> None:
        def ask(seq: int, request_id: str) -> dict[str, Any]:
            return envelope(seq, "permission", {"requestId": request_id, "tool": "Write", "input": {}, "expiresAt": "x"})

        self.transport.log.extend(
            [envelope(1), ask(2, "r1"), envelope(3, "answer", {"requestId": "r1", "outcome": "allow"}), ask(4, "r2")]
        )
        session = await self.client.create("t")
        asked: list[str] = []

        def on_permission(request: Any) -> Any:
            asked.append(request["data"]["requestId"])
            return allow()

        session.on_permission(on_permission)
        await asyncio.sleep(0.01)
        self.hear(4, 2, 4)
        await asyncio.sleep(0.01)
        self.assertEqual(asked, ["r2"])
        self.assertEqual([(a["requestId"], a["behavior"]) for a in self.transport.answered], [("r2", "allow")])
        self.assertEqual([e["seq"] for e in session.pending()], [4])


if __name__ == "__main__":
    unittest.main()
