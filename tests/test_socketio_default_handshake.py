"""Socket.IO's handshake at `$default`: `$connect` stores a pending item and has the open packet posted, the
namespace CONNECT answers the sid and registers (its user from `auth` or the token), refusals are told and
closed, and a CONNECT with {pid, offset} recovers its session. On moto, with a real HTTP Management API
endpoint."""

from __future__ import annotations

import dataclasses
import json
import time

import engineio.packet as eio
import pytest
import socketio.packet as sio

from handlers import disconnect
from handlers import socketio_open as open_handler
from shared import socketio_codec as codec
from shared.counters import Counts
from shared.pending_connections import PENDING_TTL_SECONDS
from shared.sessions import session_key
from shared.store import SOCKETIO_KEY
from tests.handler_calls import state
from tests.support.events import disconnect_event, load_event
from tests.support.socketio_default import (
    IMPLIED_ENDPOINT,
    A,
    B,
    connect_answer,
    keys,
    opened,
    posted,
    pushed,
    send,
    socketio_connect,
    socketio_packet,
)
from tests.support.tokens import token


# -- $connect and the namespace handshake ------------------------------------------------------
def test_connect_stores_a_pending_item_and_has_the_open_packet_posted(socketio_svc, management_api):
    socketio_connect(A)
    assert socketio_svc.recorded_invoker.payloads == [{"open": {"connectionId": A, "endpoint": IMPLIED_ENDPOINT}}]
    assert keys(socketio_svc) == {(f"CONN#{A}", f"CONN#{A}")}  # nothing counted before the CONNECT
    assert socketio_svc.counters.read() == Counts()
    result = open_handler.handler(socketio_svc.recorded_invoker.payloads[0], None)
    assert result == {"statusCode": 200, "body": json.dumps({"opened": True})}
    (frame,) = posted(management_api, A)
    packet = eio.Packet(encoded_packet=frame)
    assert packet.packet_type == eio.OPEN and packet.data["sid"] == A and packet.data["upgrades"] == []


def test_namespace_connect_answers_the_sid_and_registers(socketio_svc, management_api):
    opened(A)
    assert socketio_svc.counters.read() == Counts(connections=1, active_users=1)
    items = state(socketio_svc)
    assert items[(f"CONN#{A}", f"CONN#{A}")]["protocol"] == {"S": "socketio"}
    assert "pending" not in items[(f"CONN#{A}", f"CONN#{A}")]
    assert (SOCKETIO_KEY, f"CONN#{A}") in items and ("ANON", f"CONN#{A}") in items
    assert [frame[:2] for frame in management_api.raw_frames(A)] == ["40"]  # the answer alone is posted


def test_a_repeated_namespace_connect_is_answered_and_counted_once(socketio_svc):
    """Answered again, with a new session id (the one answered before is stored nowhere in clear)."""
    pid = opened(A)
    registered = state(socketio_svc)[(f"CONN#{A}", f"CONN#{A}")]
    assert connect_answer(send(A, "40"), A) != pid
    again = state(socketio_svc)[(f"CONN#{A}", f"CONN#{A}")]
    assert {k: v for k, v in again.items() if k != "session"} == {k: v for k, v in registered.items() if k != "session"}
    assert socketio_svc.counters.read().connections == 1
    assert len([key for key in state(socketio_svc) if key[0].startswith("SESSION#") and key[0] == key[1]]) == 1


def test_the_new_session_is_named_by_the_registration_and_is_one_session(socketio_svc):
    pid = opened(A)
    items = state(socketio_svc)
    (session,) = [pk for pk, sk in items if pk.startswith("SESSION#") and pk == sk]
    assert items[(f"CONN#{A}", f"CONN#{A}")]["session"] == {"S": session}
    assert items[(session, session)]["connectionId"] == {"S": A} and session == session_key(pid)
    assert items[(f"CONN#{A}", f"SESSION#{A}")]["session"] == {"S": session}  # the pointer


def test_with_recovery_off_the_connect_answers_no_pid_and_starts_no_session(socketio_svc, management_api, monkeypatch):
    monkeypatch.setattr(socketio_svc, "config", dataclasses.replace(socketio_svc.config, recovery_window_seconds=0))
    monkeypatch.setattr(socketio_svc.sessions, "window_seconds", 0)
    socketio_connect(A)
    assert send(A, "40") == codec.NOOP_FRAME
    assert management_api.raw_frames(A) == [codec.connected(A)]
    assert not [key for key in keys(socketio_svc) if "SESSION#" in key[1]]
    assert "session" not in state(socketio_svc)[(f"CONN#{A}", f"CONN#{A}")]
    assert socketio_svc.counters.read() == Counts(connections=1, active_users=1)


def test_user_id_in_the_connect_auth_names_the_user_without_auth(socketio_svc):
    socketio_connect(A, userId="mallory")
    connect_answer(send(A, '40{"userId":"alice"}'), A)
    assert ("USER#alice", f"CONN#{A}") in keys(socketio_svc)
    assert not any("mallory" in pk for pk, _ in keys(socketio_svc))


def test_a_token_in_the_connect_auth_registers_its_sub(socketio_hs256):
    socketio_connect(A)
    connect_answer(send(A, "40" + json.dumps({"token": token({"sub": "alice"})})), A)
    assert ("USER#alice", f"CONN#{A}") in keys(socketio_hs256)
    assert socketio_hs256.counters.read() == Counts(connections=1, active_users=1)


def test_a_token_in_the_connect_query_string_is_honoured_when_the_connect_carries_none(socketio_hs256):
    opened(A, token=token({"sub": "alice", "dashboards": ["sales"]}))
    assert ("USER#alice", f"CONN#{A}") in keys(socketio_hs256)
    assert state(socketio_hs256)[(f"CONN#{A}", f"CONN#{A}")]["allowed"] == {"L": [{"S": "sales"}]}


def test_the_connect_auth_token_wins_over_the_query_strings(socketio_hs256):
    socketio_connect(A, token=token({"sub": "alice"}))
    connect_answer(send(A, "40" + json.dumps({"token": token({"sub": "bob"})})), A)
    assert ("USER#bob", f"CONN#{A}") in keys(socketio_hs256)
    assert not any("alice" in pk for pk, _ in keys(socketio_hs256))


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
def test_a_refused_handshake_is_told_closed_and_stores_nothing(socketio_hs256, management_api, query, connect_frame):
    socketio_connect(A, **query)
    assert send(A, connect_frame) == codec.NOOP_FRAME
    assert posted(management_api, A) == [codec.connect_error("Unauthorized")]
    assert socketio_packet(codec.connect_error("Unauthorized")).data == {"message": "Unauthorized"}
    assert management_api.closed(A)
    assert keys(socketio_hs256) == set()
    assert socketio_hs256.counters.read() == Counts()


def test_a_repeated_namespace_connect_with_a_bad_token_stays_registered(socketio_hs256, management_api):
    """The registration is not undone by a second CONNECT, whatever it carries: answered as before, counted once."""
    opened(A, token=token({"sub": "alice"}))
    connect_answer(send(A, '40{"token":"not-a-jwt"}'), A)
    assert ("USER#alice", f"CONN#{A}") in keys(socketio_hs256) and not management_api.closed(A)
    assert socketio_hs256.counters.read() == Counts(connections=1, active_users=1)


def test_a_connect_after_its_pending_item_expired_is_refused_and_counts_nothing(socketio_svc, management_api):
    socketio_connect(A)
    later = time.time() + PENDING_TTL_SECONDS + 1
    socketio_svc.table.clock = lambda: later  # the item is still there: DynamoDB's TTL deletes late
    assert send(A, "40") == codec.NOOP_FRAME
    assert posted(management_api, A) == [codec.connect_error("Unauthorized")]
    assert keys(socketio_svc) == set() and socketio_svc.counters.read() == Counts()


def test_a_connect_from_a_connection_that_never_connected_is_refused(socketio_svc, management_api):
    assert send(A, "40") == codec.NOOP_FRAME
    assert posted(management_api, A) == [codec.connect_error("Unauthorized")]
    assert management_api.closed(A) and keys(socketio_svc) == set()


@pytest.mark.parametrize("frame", ["40/admin,", '40/admin,{"token":"x"}', "40/admin"])
def test_a_connect_to_another_namespace_is_refused(socketio_svc, management_api, frame):
    socketio_connect(A)
    before = state(socketio_svc)
    answer = send(A, frame)
    assert answer == '44/admin,{"message":"Invalid namespace"}'
    packet = socketio_packet(answer)
    assert (packet.packet_type, packet.namespace, packet.data) == (
        sio.CONNECT_ERROR,
        "/admin",
        {"message": "Invalid namespace"},
    )
    assert state(socketio_svc) == before and socketio_svc.counters.read() == Counts()


@pytest.mark.dynamodb_wire
def test_a_failure_inside_default_is_still_answered_in_engine_io(socketio_svc, management_api):
    """A raising function would make API Gateway send its own JSON error frame, which drops a Socket.IO client."""
    from shared.contract import INTERNAL_ERROR
    from tests.faults import DynamoDBFaults

    socketio_connect(A)
    faults = DynamoDBFaults(socketio_svc.table.client)
    # The CONNECT's first call, the update that registers the pending item: not retried, a crash at once.
    faults.fail("UpdateItem", status=400, code="ValidationException")
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
def test_a_connect_with_a_bad_pid_or_offset_gets_a_new_session(socketio_svc, management_api, auth):
    socketio_connect(A)
    pid = connect_answer(send(A, "40" + json.dumps(auth)), A)
    assert pid != auth.get("pid") and posted(management_api, A) == []  # nothing replayed, no error


def test_a_socketio_session_is_recovered_at_default_with_its_offsets(socketio_svc, management_api):
    """The deployed Socket.IO path: a CONNECT with {pid, offset} after a drop gets the same pid and sid back, the
    missed update with its offset as the event's last argument, and its room again."""
    from handlers import publish_dashboard_update

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
