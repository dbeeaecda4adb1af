"""Packets at `$default` that are not events: Engine.IO's (pings, pongs, close), Socket.IO's DISCONNECT,
unreadable frames and hypothesis-drawn garbage, all answered in Engine.IO at no cost and changing nothing they
should not; and JSON frames too deeply nested. On moto, with a real HTTP Management API endpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import socketio.packet as sio
from hypothesis import given
from hypothesis import strategies as st

from handlers import connect, default, disconnect
from shared import socketio_codec as codec
from shared.counters import Counts
from shared.errors import InvalidInput
from tests.handler_calls import INTERNAL_WORDS, state
from tests.support.drawn import fuzz_settings
from tests.support.drawn import json_values as drawn_json_values
from tests.support.events import connect_event, disconnect_event
from tests.support.socketio_default import (
    A,
    B,
    frame_event,
    keys,
    opened,
    posted,
    send,
    socketio_connect,
    socketio_packet,
)


class DynamoDBCalls:
    """Every DynamoDB operation the client is asked for (before botocore builds the request)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.operations: list[str] = []
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, event_name: str, **_: Any) -> None:
        self.operations.append(event_name.rsplit(".", 1)[-1])

    def close(self) -> None:
        self.client.meta.events.unregister("before-call.dynamodb", self._record)


# -- the heartbeat and the leaving -------------------------------------------------------------
@pytest.mark.parametrize("frame", ["3", "2", "5", "6", "0", "3probe", "4", "42[", "7", "45-", "4²"])
def test_engine_io_packets_and_unreadable_frames_cost_no_dynamodb_call(socketio_svc, management_api, frame):
    opened(A)
    calls = DynamoDBCalls(socketio_svc.table.client)
    try:
        answer = send(A, frame)
    finally:
        calls.close()
    assert calls.operations == []
    assert posted(management_api, A) == []
    if frame in ("3", "2", "5", "6", "0", "3probe"):
        assert answer == codec.NOOP_FRAME
    else:
        name, error = socketio_packet(answer).data
        assert name == "analytics:error" and error["message"].startswith("Malformed packet")


def test_the_pong_answers_noop(socketio_svc):
    opened(A)
    assert send(A, "3") == "6"


@pytest.mark.parametrize("frame", ["41", "1"])
def test_disconnect_packets_remove_the_connections_state_as_disconnect_does(socketio_svc, management_api, frame):
    """`41` (`socket.disconnect()`) ends the session too; Engine.IO's close, a transport closing, keeps it for the
    recovery window (its item, and CONN#A / SESSION#A that points at it)."""
    opened(A)
    opened(B)
    for body in ('42["analytics:subscribeLiveMetrics"]', '42["analytics:joinDashboard","sales"]'):
        send(A, body)
    send(B, '42["analytics:joinDashboard","sales"]')
    assert send(A, frame) == codec.NOOP_FRAME
    left = {(pk, sk) for pk, sk in keys(socketio_svc) if A in pk or A in sk}
    assert left == (set() if frame == "41" else {(f"CONN#{A}", f"SESSION#{A}")})
    sessions = [item for (pk, _), item in state(socketio_svc).items() if pk.startswith("SESSION#")]
    assert sorted(item["connectionId"]["S"] for item in sessions) == ([B] if frame == "41" else [A, B])
    assert socketio_svc.counters.read() == Counts(connections=1, active_users=1, subscribers=0, active_dashboards=1)
    after = state(socketio_svc)
    send(A, frame)  # again: nothing more
    disconnect.handler(disconnect_event(A), None)  # and API Gateway's own $disconnect after it
    assert state(socketio_svc) == after


def test_disconnect_before_the_namespace_connect_removes_the_pending_item(socketio_svc):
    socketio_connect(A)
    disconnect.handler(disconnect_event(A), None)
    assert keys(socketio_svc) == set() and socketio_svc.counters.read() == Counts()


# -- JSON frames beside Socket.IO ---------------------------------------------------------------
@pytest.mark.parametrize("body", ["[" * 20000, '{"action":' + "[" * 10000])
def test_deeply_nested_json_frames_are_refused_not_crashed(lambda_env, management_api, body):
    assert connect.handler(connect_event(A), None)["statusCode"] == 200
    before = state(lambda_env)
    result = default.handler(frame_event(A, body), None)
    assert result["statusCode"] == 400
    assert json.loads(result["body"]) == {"ok": False, "error": "Malformed frame: not valid JSON"}
    assert state(lambda_env) == before


# -- garbage ------------------------------------------------------------------------------------
EXAMPLES = fuzz_settings(150)
json_values = drawn_json_values(20, 10)
json_text = json_values.map(json.dumps)
digits = st.text(alphabet="0123456789", min_size=1, max_size=30)
garbage = st.one_of(
    st.from_regex(r"\A[0-9].{0,60}\Z"),  # any text after a digit
    st.builds(lambda d, t: d + t, st.sampled_from("0123456789"), st.text(max_size=80)),
    st.sampled_from(["4", "42[", "42{}", "42]", "45-", "451-", '451-["x"]', "46-[]", "44", "43", "4/", "40/", "4/,"]),
    st.builds(
        lambda prefix, body: prefix + body, st.sampled_from(["4", "42", "43", "44", "45", "46", "40/x,"]), json_text
    ),
    st.builds(lambda p, i, body: p + i + body, st.sampled_from(["42", "43", "42/admin,"]), digits, json_text),
    st.builds(lambda d, n: "42" + "9" * d + '["x"]', st.integers(16, 40), st.none()),
    st.integers(1, 3000).map(lambda n: "42" + "1" * n + "[]"),
    st.integers(500, 5000).map(lambda n: '42["x",' + "[" * n + "]" * n + "]"),
    st.integers(500, 5000).map(lambda n: "42" + "{" * n),
    st.builds(lambda d, b: d + b.decode("latin-1"), st.sampled_from("0123456"), st.binary(max_size=60)),
    st.builds(lambda d, t: d + t, st.sampled_from(["42", "40", "4"]), st.text(alphabet="²³¹٣۳০߀", min_size=1)),
)


def changes_state(frame: str) -> bool:
    """Frames that mean something the contract lets change the state: a close, a disconnect, an event, a CONNECT
    (answered again with a new session id)."""
    try:
        packet = codec.decode(frame)
    except InvalidInput:
        return False
    if packet.engine_type == codec.EIO_CLOSE:
        return True
    if packet.namespace != codec.ROOT_NAMESPACE:
        return False
    return packet.socket_type in (codec.DISCONNECT, codec.CONNECT) or (
        packet.socket_type == codec.EVENT
        and isinstance(packet.data, list)
        and bool(packet.data)
        and packet.data[0] in ("analytics:subscribeLiveMetrics", "analytics:joinDashboard", "analytics:leaveDashboard")
    )


@pytest.fixture
def registered(socketio_svc, monkeypatch):
    monkeypatch.setattr(socketio_svc, "config", dataclasses.replace(socketio_svc.config, rate_limit_per_second=0))
    opened(A)
    send(A, '42["analytics:subscribeLiveMetrics"]')
    send(A, '42["analytics:joinDashboard","sales"]')
    return socketio_svc


def assert_engine_io_answer(answer: str) -> None:
    assert answer and answer[0] in "0123456"
    if answer[0] == "4":
        sio.Packet(encoded_packet=answer[1:])  # python-socketio reads it


@EXAMPLES
@given(frame=garbage)
def test_garbage_at_default_is_answered_in_engine_io_and_changes_nothing(registered, management_api, frame):
    if changes_state(frame):
        return
    socketio_svc = registered
    before, count = state(socketio_svc), len(posted(management_api, A))
    result = default.handler(frame_event(A, frame), None)  # no exception may escape
    assert result["statusCode"] == 200
    assert_engine_io_answer(result["body"])
    new = posted(management_api, A)[count:]
    for body in new:
        assert_engine_io_answer(body)
    for text in (result["body"], *new):
        packet = socketio_packet(text) if text[0] == "4" else None
        if packet is not None and packet.packet_type == sio.EVENT and packet.data[0] == "analytics:error":
            error = packet.data[1]
            own_words = error["message"].replace(error.get("event", "\0"), "")  # the client's own name may come back
            assert not any(word in own_words for word in INTERNAL_WORDS), error
    assert state(socketio_svc) == before
