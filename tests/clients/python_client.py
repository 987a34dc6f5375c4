"""A python-socketio peer: authenticates, creates a session, sends a message, hears the
turn as `session:event` envelopes, and checks the ack shapes; then approves an agent's
tool call in a session of the `asker` profile. It prints one JSON line.

Environment: RUNTIME_URL, and SCRIPT_ARGS = {"secret": "..."}.
"""

import json
import os
import re
import sys
import threading

import socketio

TIMEOUT = 10
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Events:
    """Every `session:event` envelope, and a way to wait for one."""

    def __init__(self):
        self.received = []
        self.changed = threading.Condition()

    def add(self, envelope):
        with self.changed:
            self.received.append(envelope)
            self.changed.notify_all()

    def wait_for(self, predicate):
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((e for e in self.received if predicate(e)), None), TIMEOUT
            )
        check(found is not None, "no matching session:event in time")
        return found


def refused(url, **options):
    """The message of the `connect_error` a refused handshake gets."""
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", errors.append)
    try:
        client.connect(url, wait_timeout=TIMEOUT, **options)
    except socketio.exceptions.ConnectionError:
        check(len(errors) == 1, f"one connect_error: {errors}")
        return errors[0]["message"]
    client.disconnect()
    raise AssertionError(f"connected with {options}")


def approve(client, events):
    """Answers a `permission` event with allow; returns what the turn made of it."""
    created = client.call("session:create", {"agentType": "asker"}, timeout=TIMEOUT)
    session_id = created["session"]["id"]
    client.call(
        "session:message",
        {
            "sessionId": session_id,
            "content": 'ask Write {"file_path":"py.txt","content":"from python"}',
        },
        timeout=TIMEOUT,
    )
    asked = events.wait_for(
        lambda e: e["sessionId"] == session_id and e["type"] == "permission"
    )
    got = client.call("session:get", {"sessionId": session_id}, timeout=TIMEOUT)
    check(got["session"]["pending"] == [asked], f"pending: {got}")
    answered = client.call(
        "session:answer",
        {
            "sessionId": session_id,
            "requestId": asked["data"]["requestId"],
            "behavior": "allow",
        },
        timeout=TIMEOUT,
    )
    check(sorted(answered) == ["ok", "seq"] and answered["ok"] is True, answered)
    answer = events.wait_for(
        lambda e: e["sessionId"] == session_id and e["seq"] == answered["seq"]
    )
    result = events.wait_for(
        lambda e: e["sessionId"] == session_id
        and e["type"] == "agent"
        and e["data"]["type"] == "result"
    )
    return {"tool": asked["data"]["tool"], "answer": answer["data"], "result": result["data"]["result"]}


def main():
    url = os.environ["RUNTIME_URL"]
    secret = json.loads(os.environ.get("SCRIPT_ARGS", "{}"))["secret"]
    refusals = {
        "wrong": refused(url, auth={"token": "wrong"}),
        "missing": refused(url),
    }
    for name, message in refusals.items():
        check(message == "unauthorized", f"{name}: {message!r}")

    client = socketio.Client(reconnection=False)
    events = Events()
    client.on("session:event", events.add)
    client.connect(url, auth={"token": secret}, wait_timeout=TIMEOUT)

    created = client.call("session:create", {"agentType": "tester"}, timeout=TIMEOUT)
    check(sorted(created) == ["ok", "session"], f"create ack: {created}")
    check(created["ok"] is True and created["session"]["status"] == "idle", created)
    session_id = created["session"]["id"]

    sent = client.call(
        "session:message",
        {"sessionId": session_id, "content": "reply from python"},
        timeout=TIMEOUT,
    )
    check(sorted(sent) == ["messageId", "ok", "seq"], f"message ack: {sent}")
    result = events.wait_for(
        lambda e: e["seq"] > sent["seq"]
        and e["type"] == "agent"
        and e["data"]["type"] == "result"
    )
    check(result["data"]["result"] == "from python", result)
    idle = events.wait_for(
        lambda e: e["seq"] > result["seq"]
        and e["type"] == "status"
        and e["data"]["status"] == "idle"
    )
    seqs = [e["seq"] for e in events.received]
    check(seqs == list(range(1, idle["seq"] + 1)), f"seqs: {seqs}")
    for envelope in events.received:
        check(
            sorted(envelope) == ["at", "data", "seq", "sessionId", "type"], envelope
        )
        check(envelope["sessionId"] == session_id, envelope)
        check(RFC3339_UTC.match(envelope["at"]) is not None, envelope["at"])

    missing = client.call("session:get", {"sessionId": "no-such"}, timeout=TIMEOUT)
    check(sorted(missing) == ["error", "ok"] and missing["ok"] is False, missing)
    check(sorted(missing["error"]) == ["code", "message"], missing)
    check(missing["error"]["code"] == "not_found", missing)
    invalid = client.call("session:get", "not an object", timeout=TIMEOUT)
    check(invalid["error"]["code"] == "invalid_request", invalid)

    joined = client.call(
        "session:join", {"sessionId": session_id, "afterSeq": 0}, timeout=TIMEOUT
    )
    check(sorted(joined) == ["events", "hasMore", "ok", "session"], joined)
    check(joined["events"] == events.received, "join replays what was streamed")

    stopped = client.call("session:stop", {"sessionId": session_id}, timeout=TIMEOUT)
    check(stopped["session"]["status"] == "stopped", stopped)
    approval = approve(client, events)
    transport = client.transport()
    client.disconnect()
    print(
        json.dumps(
            {
                "sessionId": session_id,
                "refusals": refusals,
                "transport": transport,
                "types": [e["type"] for e in events.received],
                "lastSeq": idle["seq"],
                "notFound": missing,
                "approval": approval,
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # any failure: report it and exit non-zero
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
