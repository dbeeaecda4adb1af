"""Socket.IO at `$default`, as API Gateway calls it: the handshake, events and acks, pongs, garbage; and the
function that posts the open packet. On moto, with a real HTTP Management API endpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import engineio.packet as eio
import pytest
import socketio.packet as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import connect, default, disconnect
from handlers import socketio_open as open_handler
from shared import socketio_codec as codec
from shared.config import AuthSettings
from shared.contract import LIVE_METRICS, METRIC_NAMES
from shared.counters import Counts
from shared.errors import ConnectionGone, InvalidInput
from shared.socketio_open import RETRY_DELAYS_SECONDS, post_open_packet
from shared.store import SOCKETIO_KEY
from tests.handler_calls import INTERNAL_WORDS, state
from tests.support.dynamodb import connection_rooms
from tests.support.events import connect_event, disconnect_event, load_event
from tests.support.tokens import SECRET, token

A, B = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="
SOCKETIO_QUERY = {"EIO": "4", "transport": "websocket"}
IMPLIED_ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod"


class RecordingInvoker:
    """Stands in for the Lambda client that invokes the open-packet function."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def invoke_async(self, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)


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


_MANAGEMENT_API: list[Any] = []  # the running test's Management API, where CONNECT answers are posted


@pytest.fixture
def svc(lambda_env, monkeypatch, management_api):
    _MANAGEMENT_API[:] = [management_api]
    invoker = RecordingInvoker()
    monkeypatch.setattr(lambda_env, "open_invoker", lambda: invoker)
    lambda_env.recorded_invoker = invoker
    return lambda_env


@pytest.fixture
def hs256(svc, monkeypatch):
    monkeypatch.setattr(svc, "config", dataclasses.replace(svc.config, auth=AuthSettings(jwt_secret=SECRET)))
    return svc


def keys(svc) -> set[tuple[str, str]]:
    return set(state(svc))


def frame_event(connection_id: str, body: str) -> dict[str, Any]:
    event = load_event("message", connection_id, body=body)
    event["requestContext"]["routeKey"] = "$default"
    return event


def send(connection_id: str, body: str) -> str:
    result = default.handler(frame_event(connection_id, body), None)
    assert result["statusCode"] == 200
    answer: str = result["body"]
    return answer


def socketio_connect(connection_id: str, **query: str) -> None:
    result = connect.handler(connect_event(connection_id, {**SOCKETIO_QUERY, **query}), None)
    assert result == {"statusCode": 200, "body": "Connected"}


def connect_answer(route_response: str, sid: str) -> str:
    """The namespace CONNECT's answer, held to its shape: the sid, and the session's private id (returned). It is
    posted (before anything a recovery replays), and the route response is Engine.IO's noop."""
    assert route_response == "6"
    answers = [frame for frame in _MANAGEMENT_API[0].raw_frames(sid) if frame.startswith("40")]
    packet = socketio_packet(answers[-1])
    assert packet.packet_type == sio.CONNECT and packet.data["sid"] == sid
    assert set(packet.data) == {"sid", "pid"} and len(packet.data["pid"]) >= 32
    pid: str = packet.data["pid"]
    return pid


def opened(connection_id: str, **query: str) -> str:
    """$connect as a Socket.IO client, then its namespace CONNECT; the session's private id (`pid`)."""
    socketio_connect(connection_id, **query)
    return connect_answer(send(connection_id, "40"), connection_id)


def socketio_packet(frame: str) -> sio.Packet:
    """A server frame decoded as python-socketio's client decodes it."""
    engine = eio.Packet(encoded_packet=frame)
    assert engine.packet_type == eio.MESSAGE
    return sio.Packet(encoded_packet=engine.data)


def posted(management_api, connection_id: str) -> list[str]:
    """What was posted to the connection but its CONNECT answers."""
    return [frame for frame in management_api.raw_frames(connection_id) if not frame.startswith("40")]


def pushed(management_api, connection_id: str) -> list[list[Any]]:
    """The Socket.IO events posted to the connection, as [name, data]."""
    packets = [socketio_packet(frame) for frame in posted(management_api, connection_id)]
    assert all(packet.packet_type == sio.EVENT for packet in packets)
    return [packet.data for packet in packets]


# -- $connect and the namespace handshake ------------------------------------------------------
def test_connect_stores_a_pending_item_and_has_the_open_packet_posted(svc, management_api):
    socketio_connect(A)
    assert svc.recorded_invoker.payloads == [{"open": {"connectionId": A, "endpoint": IMPLIED_ENDPOINT}}]
    assert keys(svc) == {(f"CONN#{A}", f"CONN#{A}")}  # nothing counted before the CONNECT
    assert svc.counters.read() == Counts()
    result = open_handler.handler(svc.recorded_invoker.payloads[0], None)
    assert result == {"statusCode": 200, "body": json.dumps({"opened": True})}
    (frame,) = posted(management_api, A)
    packet = eio.Packet(encoded_packet=frame)
    assert packet.packet_type == eio.OPEN and packet.data["sid"] == A and packet.data["upgrades"] == []


def test_namespace_connect_answers_the_sid_and_registers(svc, management_api):
    opened(A)
    assert svc.counters.read() == Counts(connections=1, active_users=1)
    items = state(svc)
    assert items[(f"CONN#{A}", f"CONN#{A}")]["protocol"] == {"S": "socketio"}
    assert "pending" not in items[(f"CONN#{A}", f"CONN#{A}")]
    assert (SOCKETIO_KEY, f"CONN#{A}") in items and ("ANON", f"CONN#{A}") in items
    assert [frame[:2] for frame in management_api.raw_frames(A)] == ["40"]  # the answer alone is posted


def test_a_repeated_namespace_connect_is_answered_and_counted_once(svc):
    """Answered again, with a new session id (the one answered before is stored nowhere in clear)."""
    pid = opened(A)
    registered = state(svc)[(f"CONN#{A}", f"CONN#{A}")]
    assert connect_answer(send(A, "40"), A) != pid
    again = state(svc)[(f"CONN#{A}", f"CONN#{A}")]
    assert {k: v for k, v in again.items() if k != "session"} == {k: v for k, v in registered.items() if k != "session"}
    assert svc.counters.read().connections == 1
    assert len([key for key in state(svc) if key[0].startswith("SESSION#") and key[0] == key[1]]) == 1


def test_user_id_in_the_connect_auth_names_the_user_without_auth(svc):
    socketio_connect(A, userId="mallory")
    connect_answer(send(A, '40{"userId":"alice"}'), A)
    assert ("USER#alice", f"CONN#{A}") in keys(svc)
    assert not any("mallory" in pk for pk, _ in keys(svc))


def test_a_token_in_the_connect_auth_registers_its_sub(hs256):
    socketio_connect(A)
    connect_answer(send(A, "40" + json.dumps({"token": token({"sub": "alice"})})), A)
    assert ("USER#alice", f"CONN#{A}") in keys(hs256)
    assert hs256.counters.read() == Counts(connections=1, active_users=1)


def test_a_token_in_the_connect_query_string_is_honoured_when_the_connect_carries_none(hs256):
    opened(A, token=token({"sub": "alice", "dashboards": ["sales"]}))
    assert ("USER#alice", f"CONN#{A}") in keys(hs256)
    assert state(hs256)[(f"CONN#{A}", f"CONN#{A}")]["allowed"] == {"L": [{"S": "sales"}]}


def test_the_connect_auth_token_wins_over_the_query_strings(hs256):
    socketio_connect(A, token=token({"sub": "alice"}))
    connect_answer(send(A, "40" + json.dumps({"token": token({"sub": "bob"})})), A)
    assert ("USER#bob", f"CONN#{A}") in keys(hs256)
    assert not any("alice" in pk for pk, _ in keys(hs256))


@pytest.mark.parametrize(
    "query, connect_frame",
    [
        ({}, "40"),
        ({}, "40{}"),
        ({}, '40{"token":""}'),
        ({}, '40{"token":5}'),
        ({}, '40{"token":"not-a-jwt"}'),
        ({}, "40" + json.dumps({"token": token(key="another-secret-of-the-same-length-for-hs256")})),
        ({}, "40" + json.dumps({"token": token({"exp": 1})})),
        ({"token": "not-a-jwt"}, "40"),
        ({"token": token({"exp": 1})}, '40{"token":"not-a-jwt"}'),
        ({"token": token()}, '40{"token":"not-a-jwt"}'),  # a bad token in `auth` is not excused by the query's
    ],
    ids=[
        "none",
        "empty-auth",
        "empty",
        "not-a-string",
        "garbage",
        "forged",
        "expired",
        "bad-query",
        "both-bad",
        "bad-auth",
    ],
)
def test_a_refused_handshake_is_told_closed_and_stores_nothing(hs256, management_api, query, connect_frame):
    socketio_connect(A, **query)
    assert send(A, connect_frame) == codec.NOOP_FRAME
    assert posted(management_api, A) == [codec.connect_error("Unauthorized")]
    assert socketio_packet(codec.connect_error("Unauthorized")).data == {"message": "Unauthorized"}
    assert management_api.closed(A)
    assert keys(hs256) == set()
    assert hs256.counters.read() == Counts()


def test_a_connect_from_a_connection_that_never_connected_is_refused(svc, management_api):
    assert send(A, "40") == codec.NOOP_FRAME
    assert posted(management_api, A) == [codec.connect_error("Unauthorized")]
    assert management_api.closed(A) and keys(svc) == set()


@pytest.mark.parametrize("frame", ["40/admin,", '40/admin,{"token":"x"}', "40/admin"])
def test_a_connect_to_another_namespace_is_refused(svc, management_api, frame):
    socketio_connect(A)
    before = state(svc)
    answer = send(A, frame)
    assert answer == '44/admin,{"message":"Invalid namespace"}'
    packet = socketio_packet(answer)
    assert (packet.packet_type, packet.namespace, packet.data) == (
        sio.CONNECT_ERROR,
        "/admin",
        {"message": "Invalid namespace"},
    )
    assert state(svc) == before and svc.counters.read() == Counts()


# -- events and their acks -------------------------------------------------------------------
OK = [{"ok": True}]


@pytest.mark.parametrize("ack_id", [None, 0, 7, codec.MAX_ACK_ID])
def test_every_contract_event_runs_and_is_acknowledged(svc, management_api, ack_id):
    opened(A)
    expected = codec.NOOP_FRAME if ack_id is None else None

    def call(*args: Any) -> None:
        answer = send(A, f"42{'' if ack_id is None else ack_id}{json.dumps(list(args))}")
        if expected is not None:
            assert answer == expected
        else:
            packet = socketio_packet(answer)
            assert (packet.packet_type, packet.id, packet.data) == (sio.ACK, ack_id, OK)

    call("analytics:subscribeLiveMetrics")
    call("analytics:joinDashboard", "sales")
    call("analytics:joinDashboard", "ops")
    call("analytics:leaveDashboard", "ops")
    call("analytics:requestLiveMetrics")
    assert svc.counters.read() == Counts(connections=1, active_users=1, subscribers=1, active_dashboards=1)
    assert connection_rooms(svc, A) == ["sales"]
    call("analytics:unsubscribeLiveMetrics")
    assert svc.counters.read().subscribers == 0
    events = pushed(management_api, A)
    assert [name for name, _ in events] == [LIVE_METRICS, LIVE_METRICS]  # the subscription's, the request's
    for _, metrics in events:
        assert [metric["name"] for metric in metrics] == list(METRIC_NAMES)
    assert posted(management_api, A)[0].startswith('42["analytics:liveMetrics",[')


def test_the_ack_is_in_the_exact_socketio_form(svc):
    opened(A)
    assert send(A, '4212["analytics:joinDashboard","sales"]') == '4312[{"ok":true}]'


@pytest.mark.parametrize(
    "args, message, echoed",
    [
        (["analytics:joinDashboard", "not ok!"], None, "analytics:joinDashboard"),
        (["analytics:joinDashboard"], None, "analytics:joinDashboard"),
        (["analytics:leaveDashboard", {"id": "sales"}], None, "analytics:leaveDashboard"),
        (["analytics:nope", 1], "Unknown event: analytics:nope", "analytics:nope"),
        ([], 'Malformed event: expected ["event name", argument]', None),
        ([5, "x"], 'Malformed event: expected ["event name", argument]', None),
    ],
)
@pytest.mark.parametrize("ack_id", [None, 3])
def test_a_refused_event_is_told_as_analytics_error_and_in_its_ack(svc, management_api, args, message, echoed, ack_id):
    opened(A)
    before = state(svc)
    answer = send(A, f"42{'' if ack_id is None else ack_id}{json.dumps(args)}")
    ((name, error),) = pushed(management_api, A)
    assert name == "analytics:error"
    assert isinstance(error["message"], str) and error["message"]
    if message is not None:
        assert error["message"] == message
    assert error.get("event") == echoed
    if ack_id is None:
        assert answer == codec.NOOP_FRAME
    else:
        packet = socketio_packet(answer)
        assert (packet.packet_type, packet.id, packet.data) == (
            sio.ACK,
            ack_id,
            [{"ok": False, "error": error["message"]}],
        )
    assert posted(management_api, A)[0].startswith('42["analytics:error",{')
    assert state(svc) == before


def test_binary_events_are_refused(svc, management_api):
    opened(A)
    before = state(svc)
    answer = send(A, '451-1["analytics:joinDashboard",{"_placeholder":true,"num":0}]')
    assert socketio_packet(answer).data == [{"ok": False, "error": "Binary arguments are not supported"}]
    ((name, error),) = pushed(management_api, A)
    assert name == "analytics:error" and error["message"] == "Binary arguments are not supported"
    assert state(svc) == before


def test_events_in_another_namespace_are_ignored(svc, management_api):
    opened(A)
    before = state(svc)
    assert send(A, '42/admin,1["analytics:joinDashboard","sales"]') == codec.NOOP_FRAME
    assert state(svc) == before and posted(management_api, A) == []


def test_the_rate_limit_applies_to_socketio_events(svc, management_api, monkeypatch):
    config = dataclasses.replace(svc.config, rate_limit_per_second=1, rate_limit_burst=2)
    monkeypatch.setattr(svc, "config", config)
    opened(A)
    acks = [socketio_packet(send(A, f'42{i}["analytics:requestLiveMetrics"]')).data[0] for i in range(3)]
    assert [ack["ok"] for ack in acks] == [True, True, False]
    assert "Too many requests" in acks[2]["error"]


@pytest.mark.parametrize("frame", ['42["analytics:subscribeLiveMetrics"]', '421["analytics:joinDashboard","sales"]'])
def test_events_before_the_namespace_connect_change_nothing(svc, management_api, frame):
    socketio_connect(A)
    before = state(svc)
    send(A, frame)
    assert state(svc) == before
    assert svc.counters.read() == Counts()
    ((name, error),) = pushed(management_api, A)
    assert (name, error["message"]) == ("analytics:error", "This connection is no longer registered; reconnect")
    send(A, "41")
    assert keys(svc) == set() and svc.counters.read() == Counts()


def test_a_socketio_subscriber_gets_socketio_pushes_from_the_publisher(svc, management_api):
    from handlers import publish_metrics

    opened(A)
    send(A, '42["analytics:subscribeLiveMetrics"]')
    publish_metrics.handler(load_event("scheduled"), None)
    frames = posted(management_api, A)
    events = [socketio_packet(frame).data for frame in frames if frame.startswith("4")]
    assert len(events) >= 2 and all(name == LIVE_METRICS for name, _ in events)
    assert all(frame == codec.PING_FRAME for frame in frames if not frame.startswith("4"))


# -- the heartbeat and the leaving -------------------------------------------------------------
@pytest.mark.parametrize("frame", ["3", "2", "5", "6", "0", "3probe", "4", "42[", "7", "45-", "4²"])
def test_engine_io_packets_and_unreadable_frames_cost_no_dynamodb_call(svc, management_api, frame):
    opened(A)
    calls = DynamoDBCalls(svc.table.client)
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


def test_the_pong_answers_noop(svc):
    opened(A)
    assert send(A, "3") == "6"


@pytest.mark.parametrize("frame", ["41", "1"])
def test_disconnect_packets_remove_the_connections_state_as_disconnect_does(svc, management_api, frame):
    """`41` (`socket.disconnect()`) ends the session too; Engine.IO's close, a transport closing, keeps it for the
    recovery window (its item, and CONN#A / SESSION#A that points at it)."""
    opened(A)
    opened(B)
    for body in ('42["analytics:subscribeLiveMetrics"]', '42["analytics:joinDashboard","sales"]'):
        send(A, body)
    send(B, '42["analytics:joinDashboard","sales"]')
    assert send(A, frame) == codec.NOOP_FRAME
    left = {(pk, sk) for pk, sk in keys(svc) if A in pk or A in sk}
    assert left == (set() if frame == "41" else {(f"CONN#{A}", f"SESSION#{A}")})
    sessions = [item for (pk, _), item in state(svc).items() if pk.startswith("SESSION#")]
    assert sorted(item["connectionId"]["S"] for item in sessions) == ([B] if frame == "41" else [A, B])
    assert svc.counters.read() == Counts(connections=1, active_users=1, subscribers=0, active_dashboards=1)
    after = state(svc)
    send(A, frame)  # again: nothing more
    disconnect.handler(disconnect_event(A), None)  # and API Gateway's own $disconnect after it
    assert state(svc) == after


def test_disconnect_before_the_namespace_connect_removes_the_pending_item(svc):
    socketio_connect(A)
    disconnect.handler(disconnect_event(A), None)
    assert keys(svc) == set() and svc.counters.read() == Counts()


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
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
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
def registered(svc, monkeypatch):
    monkeypatch.setattr(svc, "config", dataclasses.replace(svc.config, rate_limit_per_second=0))
    opened(A)
    send(A, '42["analytics:subscribeLiveMetrics"]')
    send(A, '42["analytics:joinDashboard","sales"]')
    return svc


def assert_engine_io_answer(answer: str) -> None:
    assert answer and answer[0] in "0123456"
    if answer[0] == "4":
        sio.Packet(encoded_packet=answer[1:])  # python-socketio reads it


@EXAMPLES
@given(frame=garbage)
def test_garbage_at_default_is_answered_in_engine_io_and_changes_nothing(registered, management_api, frame):
    if changes_state(frame):
        return
    svc = registered
    before, count = state(svc), len(posted(management_api, A))
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
    assert state(svc) == before


# -- the open-packet function -------------------------------------------------------------------
class FlakyPoster:
    """Answers ConnectionGone `gone` times, then records the frame."""

    def __init__(self, gone: int) -> None:
        self.gone = gone
        self.attempts = 0
        self.posted: list[tuple[str, bytes]] = []

    def post(self, connection_id: str, frame: bytes) -> None:
        self.attempts += 1
        if self.attempts <= self.gone:
            raise ConnectionGone(connection_id)
        self.posted.append((connection_id, frame))


@pytest.fixture
def flaky(svc, monkeypatch):
    def with_poster(gone: int) -> FlakyPoster:
        poster = FlakyPoster(gone)
        monkeypatch.setattr(svc, "poster", lambda endpoint=None: poster)
        return poster

    return with_poster


@pytest.mark.parametrize("gone", range(len(RETRY_DELAYS_SECONDS) + 1))
def test_the_open_packet_is_posted_once_after_the_410s(svc, flaky, gone):
    poster, delays = flaky(gone), []
    socketio_connect(A)
    assert post_open_packet(svc, {"connectionId": A, "endpoint": IMPLIED_ENDPOINT}, sleep=delays.append)
    (posted,) = poster.posted
    assert posted[0] == A
    packet = eio.Packet(encoded_packet=posted[1].decode())
    assert packet.packet_type == eio.OPEN
    assert packet.data == {
        "sid": A,
        "upgrades": [],
        "pingInterval": int(svc.config.ping_interval_seconds * 1000),
        "pingTimeout": int(svc.config.ping_timeout_seconds * 1000),
        "maxPayload": 32 * 1024,
    }
    assert poster.attempts == gone + 1 and len(delays) == gone + 1
    assert delays == sorted(delays) and sum(delays) <= 5
    assert keys(svc) == {(f"CONN#{A}", f"CONN#{A}")}  # the pending item stays for the CONNECT


def test_a_connection_that_stays_gone_is_given_up_and_its_pending_item_removed(svc, flaky):
    poster, delays = flaky(10**6), []
    socketio_connect(A)
    assert post_open_packet(svc, {"connectionId": A, "endpoint": None}, sleep=delays.append) is False
    assert poster.posted == [] and poster.attempts == len(RETRY_DELAYS_SECONDS) + 1
    assert 1 <= sum(delays) <= 5
    assert keys(svc) == set()


def test_the_open_function_answers_410_when_the_connection_never_appears(svc, management_api, monkeypatch):
    import shared.socketio_open

    monkeypatch.setattr(shared.socketio_open, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    socketio_connect(A)
    management_api.gone.add(A)
    result = open_handler.handler({"open": {"connectionId": A, "endpoint": IMPLIED_ENDPOINT}}, None)
    assert result == {"statusCode": 410, "body": json.dumps({"opened": False})}
    assert keys(svc) == set()


@pytest.mark.parametrize(
    "event",
    [
        {},
        None,
        [],
        "open",
        {"open": None},
        {"open": "x"},
        {"open": []},
        {"open": {}},
        {"open": {"connectionId": 5}},
        {"open": {"connectionId": None, "endpoint": IMPLIED_ENDPOINT}},
        {"open": {"connectionId": A, "endpoint": 5}},
        {"open": {"connectionId": A, "endpoint": ["x"]}},
    ],
)
def test_the_open_function_refuses_a_malformed_event(svc, management_api, event):
    result = open_handler.handler(event, None)
    assert result["statusCode"] == 400
    assert "error" in json.loads(result["body"])
    assert management_api.requests == 0


@pytest.mark.dynamodb_wire
def test_a_failure_inside_default_is_still_answered_in_engine_io(svc, management_api):
    """A raising function would make API Gateway send its own JSON error frame, which drops a Socket.IO client."""
    from shared.contract import INTERNAL_ERROR
    from tests.faults import DynamoDBFaults

    socketio_connect(A)
    faults = DynamoDBFaults(svc.table.client)
    faults.fail("GetItem", status=400, code="ValidationException")  # not retried: a crash at once
    try:
        assert send(A, "40") == codec.connect_error(INTERNAL_ERROR)  # connect_error: the client may retry
    finally:
        faults.close()
    connect_answer(send(A, "40"), A)  # the retry, once DynamoDB answers again


@pytest.mark.parametrize(
    "auth",
    [{"pid": 42}, {"pid": ""}, {"pid": "x" * 500}, {"pid": ["a"]}, {"pid": "A" * 32, "offset": {"x": 1}},
     {"pid": "A" * 32, "offset": "9" * 5000}, {"offset": "1796591173448-1-sales"}, {"pid": None, "offset": None}],
)  # fmt: skip
def test_a_connect_with_a_bad_pid_or_offset_gets_a_new_session(svc, management_api, auth):
    socketio_connect(A)
    pid = connect_answer(send(A, "40" + json.dumps(auth)), A)
    assert pid != auth.get("pid") and posted(management_api, A) == []  # nothing replayed, no error


def test_a_socketio_session_is_recovered_at_default_with_its_offsets(svc, management_api):
    """The deployed Socket.IO path: a CONNECT with {pid, offset} after a drop gets the same pid and sid back, the
    missed update with its offset as the event's last argument, and its room again."""
    from handlers import disconnect, publish_dashboard_update

    pid = opened(A)
    assert send(A, '420["analytics:joinDashboard","sales"]') == '430[{"ok":true}]'
    update = load_event("dashboard_update")
    update["detail"] = {"dashboardId": "sales", "data": {"n": 1}}
    publish_dashboard_update.handler(update, None)
    (name, data, offset) = pushed(management_api, A)[-1]
    assert name == "analytics:dashboardUpdate" and data["data"] == {"n": 1}
    gone = disconnect_event(A)
    gone["requestContext"]["disconnectStatusCode"] = 1006
    disconnect.handler(gone, None)
    update = load_event("dashboard_update")
    update["detail"] = {"dashboardId": "sales", "data": {"n": 2}}
    publish_dashboard_update.handler(update, None)
    socketio_connect(B)
    assert send(B, "40" + json.dumps({"pid": pid, "offset": offset})) == codec.NOOP_FRAME
    # The answer is posted first, then the replay: a client buffers events that precede its CONNECT answer.
    assert management_api.raw_frames(B)[0] == codec.connected(A, pid)
    ((name, data, replayed_offset),) = pushed(management_api, B)
    assert data["data"] == {"n": 2} and replayed_offset > offset
