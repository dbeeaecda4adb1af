"""Socket.IO events at `$default`, as API Gateway calls it: each contract event run and acknowledged, refusals
told as analytics:error and in the ack, the rate limit, and the publisher's pushes in Socket.IO's encoding. On
moto, with a real HTTP Management API endpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import socketio.packet as sio

from shared import socketio_codec as codec
from shared.contract import LIVE_METRICS, METRIC_NAMES
from shared.counters import Counts
from tests.handler_calls import state
from tests.support.dynamodb import connection_rooms
from tests.support.events import load_event
from tests.support.socketio_default import A, keys, opened, posted, pushed, send, socketio_connect, socketio_packet

OK = [{"ok": True}]


@pytest.mark.parametrize("ack_id", [None, 0, 7, codec.MAX_ACK_ID])
def test_every_contract_event_runs_and_is_acknowledged(socketio_svc, management_api, ack_id):
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
    assert socketio_svc.counters.read() == Counts(connections=1, active_users=1, subscribers=1, active_dashboards=1)
    assert connection_rooms(socketio_svc, A) == ["sales"]
    call("analytics:unsubscribeLiveMetrics")
    assert socketio_svc.counters.read().subscribers == 0
    events = pushed(management_api, A)
    assert [name for name, _ in events] == [LIVE_METRICS, LIVE_METRICS]  # the subscription's, the request's
    for _, metrics in events:
        assert [metric["name"] for metric in metrics] == list(METRIC_NAMES)
    assert posted(management_api, A)[0].startswith('42["analytics:liveMetrics",[')


def test_the_ack_is_in_the_exact_socketio_form(socketio_svc):
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
def test_a_refused_event_is_told_as_analytics_error_and_in_its_ack(
    socketio_svc, management_api, args, message, echoed, ack_id
):
    opened(A)
    before = state(socketio_svc)
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
    assert state(socketio_svc) == before


def test_binary_events_are_refused(socketio_svc, management_api):
    opened(A)
    before = state(socketio_svc)
    answer = send(A, '451-1["analytics:joinDashboard",{"_placeholder":true,"num":0}]')
    assert socketio_packet(answer).data == [{"ok": False, "error": "Binary arguments are not supported"}]
    ((name, error),) = pushed(management_api, A)
    assert name == "analytics:error" and error["message"] == "Binary arguments are not supported"
    assert state(socketio_svc) == before


def test_events_in_another_namespace_are_ignored(socketio_svc, management_api):
    opened(A)
    before = state(socketio_svc)
    assert send(A, '42/admin,1["analytics:joinDashboard","sales"]') == codec.NOOP_FRAME
    assert state(socketio_svc) == before and posted(management_api, A) == []


def test_the_rate_limit_applies_to_socketio_events(socketio_svc, management_api, monkeypatch):
    config = dataclasses.replace(socketio_svc.config, rate_limit_per_second=1, rate_limit_burst=2)
    monkeypatch.setattr(socketio_svc, "config", config)
    opened(A)
    acks = [socketio_packet(send(A, f'42{i}["analytics:requestLiveMetrics"]')).data[0] for i in range(3)]
    assert [ack["ok"] for ack in acks] == [True, True, False]
    assert "Too many requests" in acks[2]["error"]


@pytest.mark.parametrize("frame", ['42["analytics:subscribeLiveMetrics"]', '421["analytics:joinDashboard","sales"]'])
def test_events_before_the_namespace_connect_change_nothing(socketio_svc, management_api, frame):
    socketio_connect(A)
    before = state(socketio_svc)
    send(A, frame)
    assert state(socketio_svc) == before
    assert socketio_svc.counters.read() == Counts()
    ((name, error),) = pushed(management_api, A)
    assert (name, error["message"]) == ("analytics:error", "This connection is no longer registered; reconnect")
    send(A, "41")
    assert keys(socketio_svc) == set() and socketio_svc.counters.read() == Counts()


def test_a_socketio_subscriber_gets_socketio_pushes_from_the_publisher(socketio_svc, management_api):
    from handlers import publish_metrics

    opened(A)
    send(A, '42["analytics:subscribeLiveMetrics"]')
    publish_metrics.handler(load_event("scheduled"), None)
    frames = posted(management_api, A)
    events = [socketio_packet(frame).data for frame in frames if frame.startswith("4")]
    assert len(events) >= 2 and all(name == LIVE_METRICS for name, _ in events)
    assert all(frame == codec.PING_FRAME for frame in frames if not frame.startswith("4"))
