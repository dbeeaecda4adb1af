"""Hostile input: any JSON, any text, any event name, floods. Nothing escapes, nothing is stored, the client is told."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from handlers import (
    connect,
    default,
    join_dashboard,
    leave_dashboard,
    request_live_metrics,
    subscribe_live_metrics,
    unsubscribe_live_metrics,
)
from shared.socketio_session import looks_like_socketio
from shared.validation import DASHBOARD_ID
from tests.faults import DynamoDBFaults
from tests.handler_calls import INTERNAL_WORDS, state
from tests.support.drawn import fuzz_settings
from tests.support.drawn import json_values as drawn_json_values
from tests.support.events import connect_event, message_event

A, B = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="
ROUTES = {
    "analytics:subscribeLiveMetrics": subscribe_live_metrics,
    "analytics:unsubscribeLiveMetrics": unsubscribe_live_metrics,
    "analytics:requestLiveMetrics": request_live_metrics,
    "analytics:joinDashboard": join_dashboard,
    "analytics:leaveDashboard": leave_dashboard,
    "$default": default,
}
EXAMPLES = fuzz_settings(100)
json_values = drawn_json_values(40, 12)


def is_frame(body: str) -> bool:
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("action"), str)


@pytest.fixture
def svc(lambda_env, monkeypatch):
    """One registered connection, in one room and subscribed; no rate limit (the property tests send thousands)."""
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, rate_limit_per_second=0))
    assert connect.handler(connect_event(A, {"userId": "alice"}), None)["statusCode"] == 200
    subscribe_live_metrics.handler(message_event(A, "analytics:subscribeLiveMetrics"), None)
    join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    return lambda_env


def assert_refused(svc, management_api, route: str, body: str, echoed: str = "") -> None:
    before, errors = state(svc), len(management_api.events(A, "analytics:error"))
    event = message_event(A, route, body=body)
    result = ROUTES[route].handler(event, None)  # no exception may escape
    ack = json.loads(result["body"])
    assert result["statusCode"] >= 400 and ack["ok"] is False
    new = management_api.events(A, "analytics:error")[errors:]
    assert len(new) == 1 and new[0]["data"]["message"] == ack["error"]
    # The client's own event name may come back in the message; nothing else of ours may.
    own_words = ack["error"].replace(echoed, "") if echoed else ack["error"]
    assert not any(word in own_words for word in INTERNAL_WORDS)
    assert state(svc) == before


@EXAMPLES
@given(route=st.sampled_from(sorted(ROUTES)), value=json_values)
def test_every_handler_refuses_json_that_is_not_a_frame(svc, management_api, route, value):
    body = json.dumps(value)
    assume(not is_frame(body) and not (route == "$default" and looks_like_socketio(body)))
    assert_refused(svc, management_api, route, body)


@EXAMPLES
@given(
    route=st.sampled_from(sorted(ROUTES)),
    body=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
def test_every_handler_refuses_malformed_frames(svc, management_api, route, body):
    # At $default a frame that starts with a digit is Engine.IO (tests/test_socketio_default_packets.py).
    assume(not is_frame(body) and not (route == "$default" and looks_like_socketio(body)))
    assert_refused(svc, management_api, route, body)


@EXAMPLES
@given(
    route=st.sampled_from(["analytics:joinDashboard", "analytics:leaveDashboard"]),
    data=json_values,
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_room_handlers_refuse_any_data_but_a_dashboard_id(svc, management_api, route, data, extra):
    assume(not (isinstance(data, str) and DASHBOARD_ID.fullmatch(data)))
    assert_refused(svc, management_api, route, json.dumps({**extra, "action": route, "data": data}))


@EXAMPLES
@given(action=st.text(max_size=300), data=json_values)
def test_unknown_events_of_any_name_are_refused(svc, management_api, action, data):
    assume(action not in ROUTES)
    assert_refused(svc, management_api, "$default", json.dumps({"action": action, "data": data}), echoed=action[:128])


@pytest.mark.dynamodb_wire
def test_an_internal_failure_reaches_the_client_as_a_generic_message(svc, management_api):
    faults = DynamoDBFaults(svc.table.client)
    faults.fail("PutItem", status=400, code="ValidationException")  # not retried: a crash at once
    try:
        assert_refused(
            svc,
            management_api,
            "analytics:joinDashboard",
            json.dumps({"action": "analytics:joinDashboard", "data": "ops"}),
        )
    finally:
        faults.close()
    (error,) = management_api.events(A, "analytics:error")
    assert error["data"]["message"] == "Internal error: the request was not applied; try again"


def test_an_oversized_frame_is_refused_and_the_connection_stays_usable(svc, management_api):
    body = json.dumps({"action": "analytics:joinDashboard", "data": "x" * 33_000})
    assert_refused(svc, management_api, "analytics:joinDashboard", body)
    assert "Frame too large" in management_api.events(A, "analytics:error")[-1]["data"]["message"]
    result = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "ops"), None)
    assert json.loads(result["body"]) == {"ok": True}


# -- the per-connection rate limit ------------------------------------------------------------
@pytest.fixture
def limited(lambda_env, monkeypatch):
    """One request a second, a burst of five, and a clock the test moves."""
    monkeypatch.setattr(
        lambda_env, "config", dataclasses.replace(lambda_env.config, rate_limit_per_second=1, rate_limit_burst=5)
    )
    clock = [time.time()]
    monkeypatch.setattr(lambda_env.table, "clock", lambda: clock[0])
    for cid in (A, B):
        assert connect.handler(connect_event(cid), None)["statusCode"] == 200
    return lambda_env, clock


def request(cid: str) -> dict:
    return json.loads(request_live_metrics.handler(message_event(cid, "analytics:requestLiveMetrics"), None)["body"])


def test_rate_limit_answers_analytics_error_beyond_the_burst(limited, management_api):
    svc, _clock = limited
    assert [request(A)["ok"] for _ in range(5)] == [True] * 5
    before = state(svc)
    result = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    assert result["statusCode"] == 429
    assert json.loads(result["body"]) == {
        "ok": False,
        "error": "Too many requests: at most 1 a second; slow down and retry",
    }
    (error,) = management_api.events(A, "analytics:error")
    assert error["data"]["event"] == "analytics:joinDashboard" and "Too many requests" in error["data"]["message"]
    assert state(svc) == before  # the refused join changed nothing


def test_rate_limit_refills_with_time(limited, management_api):
    _svc, clock = limited
    for _ in range(5):
        request(A)
    assert not request(A)["ok"]
    clock[0] += 1.0
    assert request(A)["ok"]
    assert not request(A)["ok"]
    clock[0] += 60
    assert [request(A)["ok"] for _ in range(6)] == [True] * 5 + [False]  # never more than the burst


def test_rate_limit_is_per_connection(limited, management_api):
    for _ in range(6):
        request(A)
    assert request(B)["ok"]
