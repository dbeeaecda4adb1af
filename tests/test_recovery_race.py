"""Connection state recovery at the functions: a publish landing at every step of a recovery, and the sessions
that must not be recovered (tests/faults.py interleaves the publish at botocore's boundary)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import quote

import pytest

from handlers import connect, disconnect, publish_dashboard_update, resume
from shared.config import AuthSettings
from tests.faults import DynamoDBFaults
from tests.handler_calls import connected, join, send, subscribe
from tests.support.contract import contract_validator
from tests.support.events import connect_event, disconnect_event, load_event
from tests.support.tokens import SECRET, token

A, B, C = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC="
DROPPED = 1006  # the close code of a connection that dropped (1000: the client closed on purpose)


def publish(dashboard_id: str, n: int) -> dict[str, Any]:
    event = load_event("dashboard_update")
    event["detail"] = {"dashboardId": dashboard_id, "data": {"n": n}}
    result: dict[str, Any] = json.loads(publish_dashboard_update.handler(event, None)["body"])
    return result


def leave(connection_id: str, code: int = DROPPED) -> None:
    event = disconnect_event(connection_id)
    event["requestContext"]["disconnectStatusCode"] = code
    disconnect.handler(event, None)


def updates(management_api, connection_id: str) -> list[tuple[str, int]]:
    """The dashboard updates the connection received, after holding every frame it got to asyncapi.yaml."""
    for frame in management_api.events(connection_id):
        contract_validator().frame(frame)
    return [
        (m["data"]["dashboardId"], m["data"]["data"]["n"])
        for m in management_api.events(connection_id)
        if m["event"] == "analytics:dashboardUpdate"
    ]


def session_that_left(management_api) -> tuple[str, str]:
    """A's session: in `sales` and `ops`, subscribed, one update seen; then A drops and two more are published.
    (Its session id, the offset it last saw.)"""
    connected(A, "alice")
    session = send(resume, A, "resume")["session"]
    assert join(A, "sales")["ok"] and join(A, "ops")["ok"] and subscribe(A)["ok"]
    publish("sales", 1)
    offset = management_api.events(A)[-1]["offset"]
    leave(A)
    publish("ops", 2)
    publish("sales", 3)
    return session, offset


def recover(session: str, offset: str | None) -> dict[str, Any]:
    connected(B, "alice")
    answer = send(resume, B, "resume", {"session": session, **({"offset": offset} if offset else {})})
    contract_validator().frame(answer)
    return answer


def test_a_recovery_replays_what_was_missed_and_goes_on_live(lambda_env, management_api):
    session, offset = session_that_left(management_api)
    assert recover(session, offset) == {"ok": True, "session": session, "recovered": True}
    events = [m["event"] for m in management_api.events(B)]
    assert events[0] == "analytics:liveMetrics"  # subscribed again: a snapshot at once
    assert updates(management_api, B) == [("ops", 2), ("sales", 3)]
    publish("sales", 4)
    publish("ops", 5)
    assert updates(management_api, B) == [("ops", 2), ("sales", 3), ("sales", 4), ("ops", 5)]


def test_a_client_that_saw_no_update_gets_everything_since_its_session_began(lambda_env, management_api):
    connected(A, "alice")
    session = send(resume, A, "resume")["session"]
    assert join(A, "sales")["ok"]
    leave(A)
    publish("sales", 1)
    publish("sales", 2)
    assert recover(session, None)["recovered"] is True
    assert updates(management_api, B) == [("sales", 1), ("sales", 2)]


RECOVERY_CALLS = 21  # the DynamoDB calls this recovery makes: a publish is raced in before each one


@pytest.mark.dynamodb_wire
@pytest.mark.parametrize("step", range(RECOVERY_CALLS))
def test_a_publish_racing_a_recovery_reaches_it_once_in_order(lambda_env, management_api, step):
    """Whatever step of the recovery a publish lands at: every update once, in publish order per dashboard."""
    session, offset = session_that_left(management_api)
    connected(B, "alice")
    faults = DynamoDBFaults(lambda_env.table.client)
    raced: list[dict[str, Any]] = []
    faults.interleave_at(step, lambda: raced.append(publish("sales", 10)))
    try:
        answer = send(resume, B, "resume", {"session": session, "offset": offset})
    finally:
        faults.close()
    assert raced, f"the recovery made fewer than {step + 1} calls: lower RECOVERY_CALLS"
    assert answer["recovered"] is True
    publish("sales", 11)
    received = updates(management_api, B)
    assert sorted(received) == sorted(set(received)), "no update twice"
    assert {n for _, n in received} == {2, 3, 10, 11}, "no update missed"
    sales = [n for dashboard, n in received if dashboard == "sales"]
    assert sales == sorted(sales), "in publish order"


def test_a_deliberate_leave_ends_the_session(lambda_env, management_api):
    session, offset = session_that_left(management_api)
    assert recover(session, offset)["recovered"] is True
    leave(B, code=1000)
    connected(C, "alice")
    again = send(resume, C, "resume", {"session": session, "offset": offset})
    assert again["recovered"] is False and again["session"] != session
    assert updates(management_api, C) == []


def test_another_users_session_is_not_recovered(lambda_env, management_api):
    session, offset = session_that_left(management_api)
    connected(B, "mallory")
    answer = send(resume, B, "resume", {"session": session, "offset": offset})
    assert answer["recovered"] is False and answer["session"] != session
    assert updates(management_api, B) == []


def test_a_session_belongs_to_one_connection_the_newest(lambda_env, management_api):
    """A client whose connection is half-open (it gave up on it; API Gateway has not noticed yet) takes its session
    over: the older connection is closed, its rooms and subscription move, and nothing is replayed twice."""
    session, offset = session_that_left(management_api)
    assert recover(session, offset)["recovered"] is True
    connected(C, "alice")
    assert send(resume, C, "resume", {"session": session, "offset": offset})["recovered"] is True
    assert ("DELETE", f"/@connections/{quote(B)}") in management_api.served
    assert updates(management_api, C) == [("ops", 2), ("sales", 3)]  # B's offset: the same missed updates
    publish("sales", 4)
    assert updates(management_api, C)[-1] == ("sales", 4) and updates(management_api, B)[-1] == ("sales", 3)


def test_a_session_past_the_window_is_not_recovered(lambda_env, management_api, monkeypatch):
    session, offset = session_that_left(management_api)
    clock = lambda_env.table.clock
    monkeypatch.setattr(lambda_env.table, "clock", lambda: clock() + lambda_env.config.recovery_window_seconds + 1)
    answer = recover(session, offset)
    assert answer["recovered"] is False and updates(management_api, B) == []


def test_a_history_trimmed_past_the_offset_is_not_recovered(lambda_env, management_api, monkeypatch):
    monkeypatch.setattr(lambda_env.history, "max_updates", 1)
    session, offset = session_that_left(management_api)
    publish("sales", 4)  # sales: 3 and 4 missed, more than the history holds
    answer = recover(session, offset)
    assert answer["recovered"] is False and updates(management_api, B) == []
    assert send(resume, C, "resume")["ok"] is False  # C never connected: not registered


@pytest.mark.parametrize(
    "session",
    [None, 42, "", "short", "x" * 65, "not a session id at all!", "A" * 32, ["list"], {"pid": "x"}],
)
@pytest.mark.parametrize("offset", [None, 7, "", "garbage", "9999999999999-1-sales", "1-2-3-4", {"o": 1}])
def test_bad_session_ids_and_offsets_get_a_new_session(lambda_env, management_api, session, offset):
    connected(B, "alice")
    answer = send(resume, B, "resume", {"session": session, "offset": offset})
    assert answer["ok"] is True and answer["recovered"] is False and len(answer["session"]) >= 32


@pytest.fixture
def hs256(lambda_env, monkeypatch):
    monkeypatch.setattr(
        lambda_env, "config", dataclasses.replace(lambda_env.config, auth=AuthSettings(jwt_secret=SECRET))
    )
    return lambda_env


def authenticated(connection_id: str, sub: str, dashboards: list[str]) -> None:
    query = {"token": token({"sub": sub, "dashboards": dashboards})}
    assert connect.handler(connect_event(connection_id, query), None)["statusCode"] == 200


def test_with_auth_a_session_needs_a_token_of_its_user_and_its_dashboards_are_checked_again(hs256, management_api):
    authenticated(A, "alice", ["sales", "ops"])
    session = send(resume, A, "resume")["session"]
    assert join(A, "sales")["ok"] and join(A, "ops")["ok"]
    leave(A)
    publish("sales", 1)
    publish("ops", 2)
    authenticated(B, "bob", ["sales", "ops"])  # another user holding alice's session id
    assert send(resume, B, "resume", {"session": session})["recovered"] is False
    assert updates(management_api, B) == []
    authenticated(C, "alice", ["sales"])  # alice again, whose token no longer allows `ops`
    assert send(resume, C, "resume", {"session": session}) == {"ok": True, "session": session, "recovered": True}
    assert updates(management_api, C) == [("sales", 1)]
    publish("ops", 3)
    assert updates(management_api, C) == [("sales", 1)], "not in ops"


def test_publishers_in_different_processes_number_a_dashboards_updates_without_a_gap(lambda_env):
    """Each process remembers the last seq it wrote and tries the next one first; a guess another process has
    made stale meets the put's condition, and the latest is read instead."""
    from shared.history import History

    first, second = (History(lambda_env.table, 100, 3600) for _ in range(2))
    seqs = [(first if n % 3 else second).append("sales", {"n": n}, 1_000 + n).seq for n in range(10)]
    assert seqs == list(range(1_000, 1_010))  # the first one's publish time in ms, then one by one
    assert [u.payload["n"] for u in first.after("sales", 0)] == list(range(10))
    assert [u.ms for u in first.after("sales", 0)] == sorted(u.ms for u in first.after("sales", 0))


def test_a_join_delivers_the_dashboards_latest_update_at_once(lambda_env, management_api):
    connected(A, "alice")
    assert join(A, "sales")["ok"]
    publish("sales", 1)
    publish("sales", 2)
    connected(B, "bob")
    assert join(B, "sales")["ok"]
    (latest,) = [m for m in management_api.events(B) if m["event"] == "analytics:dashboardUpdate"]
    second = management_api.events(A)[-1]["offset"].split("-")[1]
    assert latest["data"]["data"] == {"n": 2} and latest["offset"].split("-")[1:] == [second, "sales"]
    assert join(B, "sales")["ok"] and len(updates(management_api, B)) == 1, "not again for a member"


def test_the_last_value_on_join_can_be_turned_off(lambda_env, management_api, monkeypatch):
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, last_value_on_join=False))
    connected(A, "alice")
    assert join(A, "sales")["ok"]
    publish("sales", 1)
    connected(B, "bob")
    assert join(B, "sales")["ok"] and updates(management_api, B) == []


def test_session_ids_are_never_logged(lambda_env, management_api, caplog):
    caplog.set_level("DEBUG")
    session, offset = session_that_left(management_api)
    assert recover(session, offset)["recovered"] is True
    leave(B)
    assert caplog.records and not [r for r in caplog.records if session in r.getMessage()]
