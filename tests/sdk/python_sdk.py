"""Drives the runtime through the Python SDK (clients/python, installed in the test
venv). SCRIPT_ARGS = {scenario, transport, token?}; prints progress lines and, last,
one JSON line for the Rust test. The scenarios are those of typescript.mjs:

- "tour": every request, a streamed turn cut mid-stream by closing the Engine.IO
  websocket under python-socketio (it reconnects, the SDK re-joins after its last seq),
  approvals and a question answered through the helpers, typed errors, a fork of the
  idle session followed from its seq 1, and a fork refused while a turn runs.
- "restart": a long turn streams; the script prints `restart` and the test restarts the
  runtime on the same port and store; the SDK reconnects (Socket.IO, or the SSE stream
  after its last seq), the session is resumed and runs another turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from agent_runtime_client import AgentRuntimeError, allow, answers, connect, deny


def check(condition: object, message: object) -> None:
    if not condition:
        raise AssertionError(message)


def record(session):
    """Every event the caller was handed, checked for order on arrival."""
    seen = []

    def on_event(event):
        check(event["sessionId"] == session.id, event)
        expected = (seen[-1]["seq"] if seen else 0) + 1
        check(event["seq"] == expected, f"seq {event['seq']} after {expected - 1}")
        seen.append(event)

    session.on_event(on_event)
    return seen


def status_is(status):
    return lambda e: e["type"] == "status" and e["data"]["status"] == status


async def refusal(transport):
    """What a client with a wrong token gets: the error code of its first request."""
    try:
        refused = await connect(os.environ["RUNTIME_URL"], token="wrong", transport=transport)
        async with refused:
            await refused.profiles()
        return "accepted"
    except AgentRuntimeError as error:
        return error.code


async def tour(client):
    refused = await refusal(client.transport.kind)
    profiles = await client.profiles()
    check(any(p["name"] == "tester" for p in profiles), profiles)

    session = await client.create("tester", metadata={"topic": "sdk"})
    seen = record(session)
    iterated = []

    async def iterate():
        async for event in session.events():
            iterated.append(event["seq"])
            if event["type"] == "agent" and event["data"].get("result") == "stamp 300":
                return

    iterating = asyncio.create_task(iterate())
    reconnects = []
    client.on_reconnect(lambda: reconnects.append(1))
    sent = await session.send("stamp 300 5")
    before_cut = await session.next(lambda e: e["type"] == "agent" and e["seq"] > sent["seq"] + 20, sent["seq"])
    # A network failure under python-socketio: the websocket closes, it reconnects (over
    # REST, the restart scenario breaks the SSE stream instead).
    if client.transport.kind == "socketio":
        await client.transport.sio.eio.ws.close()
    result = await session.result(sent["seq"])
    check(result["data"]["result"] == "stamp 300", result)
    await session.next(status_is("idle"), result["seq"])
    await iterating
    check(reconnects or client.transport.kind == "rest", "the client reconnected")

    listed = (await client.list(agent_type="tester"))["sessions"]
    check(any(s["id"] == session.id for s in listed), listed)
    await session.turn("write notes.md hello")
    files = sorted(f["path"] for f in await session.files())
    check(files == ["CLAUDE.md", "notes.md"], files)
    check(await session.download("notes.md") == b"hello", "downloaded")
    await session.interrupt()
    check((await session.stop())["status"] == "stopped", "stopped")
    check((await session.resume())["status"] == "idle", "resumed")
    history = await session.turn("history")
    try:
        await client.get("no-such-session")
        raise AssertionError("found a missing session")
    except AgentRuntimeError as error:
        missing = error.code
    try:
        await session.set_budget({"maxTurns": 3})
        raise AssertionError("a non-admin set a budget")
    except AgentRuntimeError as error:
        budget = error.code

    # A fork of the idle session: it names the source's last seq, is followed from seq 1,
    # and is refused while its own turn runs.
    await session.next(status_is("idle"), history["seq"])
    fork = await session.fork()
    fork_seen = record(fork)
    check(fork.id != session.id, fork.id)
    check(fork.record["forkedFrom"] == {"sessionId": session.id, "seq": seen[-1]["seq"]}, fork.record)
    check(fork.record["status"] == "idle", fork.record)
    fork_sent = await fork.send("stamp 300 5")
    await fork.next(lambda e: e["type"] == "agent", fork_sent["seq"])
    try:
        await fork.fork()
        raise AssertionError("forked a running session")
    except AgentRuntimeError as error:
        busy = error.code
    check(busy == "session_busy", busy)
    fork_result = await fork.result(fork_sent["seq"])
    check(fork_result["data"]["result"] == "stamp 300", fork_result)
    await fork.next(status_is("idle"), fork_result["seq"])
    check(fork_seen[0]["seq"] == 1, fork_seen[0])

    asker = await client.create("asker")
    asker_seen = record(asker)
    asked = []

    async def on_permission(request):
        asked.append(request["data"]["tool"])
        return deny("not that one") if request["data"]["input"]["file_path"] == "no.txt" else allow()

    asker.on_permission(on_permission)
    asker.on_question(lambda request: answers({request["data"]["questions"][0]["question"]: "Blue"}))
    allowed = await asker.turn('ask Write {"file_path":"yes.txt","content":"ok"}')
    denied = await asker.turn('ask Write {"file_path":"no.txt","content":"no"}')
    question = {"question": "Which colour?", "header": "Colour", "multiSelect": False, "options": []}
    answered = await asker.turn("ask AskUserQuestion " + json.dumps({"questions": [question]}))
    outcomes = [[e["data"]["outcome"], e["data"].get("by")] for e in asker_seen if e["type"] == "answer"]

    other = await client.create("tester")
    await other.delete()
    try:
        await client.get(other.id)
        raise AssertionError("found a deleted session")
    except AgentRuntimeError as error:
        check(error.code == "not_found", error)

    return {
        "refused": refused,
        "sessionId": session.id,
        "askerId": asker.id,
        "seqs": [e["seq"] for e in seen],
        "iterated": iterated,
        "cutAfter": before_cut["seq"],
        "resultSeq": result["seq"],
        "reconnects": len(reconnects),
        "history": history["data"]["result"],
        "missing": missing,
        "budget": budget,
        "asked": asked,
        "allowed": allowed["data"]["result"],
        "denied": denied["data"]["result"],
        "answered": answered["data"]["result"],
        "outcomes": outcomes,
        "askerSeqs": [e["seq"] for e in asker_seen],
        "forkId": fork.id,
        "forkedFrom": fork.record["forkedFrom"],
        "forkStatuses": [e["data"]["status"] for e in fork_seen if e["type"] == "status"],
        "forkSeqs": [e["seq"] for e in fork_seen],
        "busy": busy,
    }


async def restart(client):
    session = await client.create("tester")
    seen = record(session)
    sent = await session.send("stamp 2000 5")
    await session.next(lambda e: e["type"] == "agent" and e["seq"] > sent["seq"] + 20, sent["seq"])
    print("restart", flush=True)
    # The runtime stops the session on its way down; the SDK hears it after reconnecting.
    await session.next(status_is("stopped"), sent["seq"])
    check((await session.resume())["status"] == "idle", "resumed")
    after = await session.turn("reply after the restart")
    check(after["data"]["result"] == "after the restart", after)
    await session.next(status_is("idle"), after["seq"])
    return {
        "sessionId": session.id,
        "seqs": [e["seq"] for e in seen],
        "stoppedMidTurn": any(e["type"] == "agent" and e["seq"] > sent["seq"] for e in seen),
    }


async def main() -> None:
    args = json.loads(os.environ.get("SCRIPT_ARGS", "{}"))
    errors = []
    client = await connect(
        os.environ["RUNTIME_URL"],
        token=args.get("token"),
        transport=args.get("transport", "socketio"),
        reconnect_delay=0.2,
        on_error=lambda error: errors.append(repr(error)),
        **({"transports": ["websocket"]} if args.get("transport", "socketio") == "socketio" else {}),
    )
    async with client:
        scenario = restart if args.get("scenario") == "restart" else tour
        summary = await asyncio.wait_for(scenario(client), float(os.environ.get("SCRIPT_TIMEOUT_MS", "60000")) / 1000)
    summary["errors"] = errors
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # any failure: report it and exit non-zero
        import traceback

        traceback.print_exc()
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
