"""The rate-limit token taken inside the write an event makes anyway (a join's and a leave's `roomIds`, a subscribe's
`live`, a new session's name): every event still pays exactly one, whatever becomes of it, and a refused event
changes nothing."""

from __future__ import annotations

import dataclasses
import time

import pytest

from handlers import connect, join_dashboard, leave_dashboard, request_live_metrics, resume, subscribe_live_metrics
from tests.handler_calls import NOT_REGISTERED, connection_item, send, state
from tests.support.events import connect_event

A = "AAAAAAAAAAAAAAA="
LIMITED = "Too many requests: at most 1 a second; slow down and retry"


@pytest.fixture
def limited(lambda_env, monkeypatch):
    """One event a second, a burst of five, at most two rooms, and a clock the test moves."""
    config = dataclasses.replace(
        lambda_env.config, rate_limit_per_second=1, rate_limit_burst=5, max_rooms_per_connection=2
    )
    monkeypatch.setattr(lambda_env, "config", config)
    clock = [time.time()]
    monkeypatch.setattr(lambda_env.table, "clock", lambda: clock[0])
    assert connect.handler(connect_event(A), None)["statusCode"] == 200
    return lambda_env, clock


def join(dashboard: object) -> dict:
    return send(join_dashboard, A, "analytics:joinDashboard", dashboard)


def leave(dashboard: object) -> dict:
    return send(leave_dashboard, A, "analytics:leaveDashboard", dashboard)


def subscribe() -> dict:
    return send(subscribe_live_metrics, A, "analytics:subscribeLiveMetrics")


def request() -> dict:
    return send(request_live_metrics, A, "analytics:requestLiveMetrics")


def resumed(*data: object) -> dict:
    return send(resume, A, "resume", *data)


def test_rate_limit_fold_every_outcome_of_a_join_or_leave_pays_one_token(limited):
    _svc, clock = limited
    assert join("sales")["ok"] and join("sales")["ok"]  # joined; a member already
    assert join("ops")["ok"] and not join("hr")["ok"]  # joined; refused: at most two rooms
    assert not join("bad id!")["ok"]  # refused: not a dashboard id
    assert request() == {"ok": False, "error": LIMITED}, "five events, five tokens"
    clock[0] += 3  # three tokens back
    assert leave("sales")["ok"] and leave("sales")["ok"] and not leave("")["ok"]  # left; not a member; bad id
    assert request() == {"ok": False, "error": LIMITED}


def test_rate_limit_fold_a_subscribe_pays_one_token_subscribed_or_not(limited):
    assert [subscribe()["ok"] for _ in range(5)] == [True] * 5
    assert subscribe() == {"ok": False, "error": LIMITED}


@pytest.mark.parametrize("event", ["join", "leave", "subscribe"])
def test_rate_limit_fold_an_event_beyond_the_burst_changes_nothing(limited, event):
    svc, _clock = limited
    assert join("sales")["ok"]
    for _ in range(4):
        assert request()["ok"]
    before = state(svc)
    refused = {"join": lambda: join("ops"), "leave": lambda: leave("sales"), "subscribe": subscribe}[event]()
    assert refused == {"ok": False, "error": LIMITED}
    assert state(svc) == before
    assert connection_item(svc, A)["roomIds"] == {"SS": ["sales"]}


def test_rate_limit_fold_an_unregistered_connection_is_told_so_before_its_bad_input(limited):
    svc, _clock = limited
    svc.store.remove_connection(A)
    assert join("bad id!") == {"ok": False, "error": NOT_REGISTERED}
    assert leave("sales") == {"ok": False, "error": NOT_REGISTERED}
    assert subscribe() == {"ok": False, "error": NOT_REGISTERED}


def test_rate_limit_fold_every_outcome_of_a_resume_pays_one_token(limited):
    assert resumed()["session"] and resumed()["session"]  # a new session; asked again
    assert resumed({"session": "x" * 32, "offset": "1-1-sales"})["session"]  # not one of ours: a new one
    assert not resumed("not an object")["ok"]  # refused: bad input
    assert request()["ok"], "four events, four tokens"
    assert resumed() == {"ok": False, "error": LIMITED}


def test_rate_limit_fold_a_resume_beyond_the_burst_changes_nothing(limited):
    svc, _clock = limited
    for _ in range(5):
        assert request()["ok"]
    before = state(svc)
    assert resumed() == {"ok": False, "error": LIMITED}
    assert state(svc) == before
    assert "session" not in connection_item(svc, A)


def test_rate_limit_fold_a_resume_of_an_unregistered_connection_is_told_so(limited):
    svc, _clock = limited
    svc.store.remove_connection(A)
    assert resumed() == {"ok": False, "error": NOT_REGISTERED}
    assert resumed("not an object") == {"ok": False, "error": NOT_REGISTERED}
