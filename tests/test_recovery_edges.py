"""Connection state recovery where it can break: a history that expired, a recovery cut short or failing, a
publish racing a join's last value, retried publishes, a `41` after `$disconnect`, the session id at rest."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from handlers import default, publish_dashboard_update, resume
from shared.history import HistoryBusy, history_key
from shared.table import text
from tests.faults import DynamoDBFaults
from tests.handler_calls import connected, join, send, subscribe
from tests.support.events import load_event
from tests.test_recovery_race import A, B, C, leave, publish, recover, session_that_left, updates


def frame_event(connection_id: str, body: str) -> dict[str, Any]:
    event = load_event("message", connection_id, body=body)
    event["requestContext"]["routeKey"] = "$default"
    return event


def history(svc, dashboard_id: str) -> list[dict[str, Any]]:
    return svc.table.client.query(
        TableName=svc.config.table_name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": text(history_key(dashboard_id))},
    )["Items"]


def test_a_history_that_expired_begins_again_above_every_seq_seen(lambda_env, management_api):
    """DynamoDB's TTL deletes a quiet dashboard's whole history: its next update must not be numbered 1 again, or
    a member that saw the old numbers would skip the new ones."""
    session, offset = session_that_left(management_api)
    assert recover(session, offset)["recovered"] is True
    before = [int(item["SK"]["S"]) for item in history(lambda_env, "sales")]
    for item in history(lambda_env, "sales"):  # what TTL does, at some point after expiry
        lambda_env.table.client.delete_item(
            TableName=lambda_env.config.table_name, Key={"PK": item["PK"], "SK": item["SK"]}
        )
    publish("sales", 4)
    assert int(history(lambda_env, "sales")[0]["SK"]["S"]) > max(before)
    assert updates(management_api, B)[-1] == ("sales", 4)


@pytest.mark.dynamodb_wire
@pytest.mark.parametrize("step", [3, 5, 7, 9, 12])
def test_a_recovery_cut_short_hands_the_whole_session_on(lambda_env, management_api, step):
    """The new connection drops while its recovery runs: the next one recovers every room and the subscription,
    never just the part restored so far."""
    session, offset = session_that_left(management_api)
    connected(B, "alice")
    faults = DynamoDBFaults(lambda_env.table.client)
    faults.interleave_at(step, lambda: leave(B))
    try:
        send(resume, B, "resume", {"session": session, "offset": offset})
    finally:
        faults.close()
    connected(C, "alice")
    answer = send(resume, C, "resume", {"session": session, "offset": offset})
    if answer["recovered"]:
        item = lambda_env.table.get({"PK": text(f"CONN#{C}"), "SK": text(f"CONN#{C}")}, consistent=True)
        assert sorted(item["roomIds"]["SS"]) == ["ops", "sales"] and "live" in item
        assert {n for _, n in updates(management_api, C)} == {2, 3}
    else:  # the session was lost with B (it left before it held the session): a new one, nothing half-restored
        assert updates(management_api, C) == []


@pytest.mark.dynamodb_wire
def test_a_recovery_that_fails_leaves_no_membership_behind(lambda_env, management_api):
    session, offset = session_that_left(management_api)
    connected(B, "alice")
    faults = DynamoDBFaults(lambda_env.table.client)
    faults.fail("Query", code="ValidationException", times=1)  # the history's, not retried: the recovery fails
    try:
        assert send(resume, B, "resume", {"session": session, "offset": offset})["ok"] is False
    finally:
        faults.close()
    assert join(B, "sales")["ok"]
    publish("sales", 4)
    assert updates(management_api, B)[-1] == ("sales", 4), "the join holds, and the update reaches it live"


@pytest.mark.dynamodb_wire
@pytest.mark.parametrize("step", range(6))  # every DynamoDB call of a join (the token rides its second)
def test_a_publish_racing_a_join_arrives_once_after_the_last_value(lambda_env, management_api, step):
    connected(A, "alice")
    publish("sales", 1)
    faults = DynamoDBFaults(lambda_env.table.client)
    raced: list[Any] = []
    faults.interleave_at(step, lambda: raced.append(publish("sales", 2)))
    try:
        assert join(A, "sales")["ok"]
    finally:
        faults.close()
    assert raced, "the join made fewer calls than this step"
    received = [n for _, n in updates(management_api, A)]
    assert received in ([1, 2], [2]), received  # the last value, then the update: once each, in order


def test_a_resume_after_a_join_sends_that_room_nothing_twice(lambda_env, management_api):
    session, offset = session_that_left(management_api)
    connected(B, "alice")
    assert join(B, "sales")["ok"]  # the last value (3), live from now on
    assert send(resume, B, "resume", {"session": session, "offset": offset})["recovered"] is True
    received = updates(management_api, B)
    assert sorted(received) == sorted(set(received)) and ("ops", 2) in received


@pytest.mark.parametrize("offset", ["garbage", 7, "9999999999999-1-sales", ""])
def test_a_known_session_with_an_offset_that_is_not_one_is_not_recovered(lambda_env, management_api, offset):
    session, _ = session_that_left(management_api)
    connected(B, "alice")
    answer = send(resume, B, "resume", {"session": session, "offset": offset})
    assert answer["recovered"] is False and updates(management_api, B) == []


def test_a_publish_tried_again_appends_once(lambda_env, management_api):
    connected(A, "alice")
    assert join(A, "sales")["ok"]
    event = load_event("dashboard_update")
    event["detail"] = {"dashboardId": "sales", "data": {"n": 1}}
    for _ in range(2):  # EventBridge delivering the same event again (the same id)
        publish_dashboard_update.handler(event, None)
    assert len(history(lambda_env, "sales")) == 1


@pytest.mark.dynamodb_wire
def test_a_history_write_whose_answer_was_lost_appends_once(lambda_env, management_api, moto_endpoint):
    connected(A, "alice")
    faults = DynamoDBFaults(lambda_env.table.client, moto_endpoint)
    faults.lose_answer("PutItem", when=lambda body: body.get("Item", {}).get("PK", {}).get("S") == "HIST#sales")
    try:
        publish("sales", 1)
    finally:
        faults.close()
    assert len(history(lambda_env, "sales")) == 1


def test_a_dashboard_too_busy_to_number_fails_the_function_to_be_retried(lambda_env, monkeypatch):
    def busy(*args: Any, **kwargs: Any) -> None:
        raise HistoryBusy("sales")

    monkeypatch.setattr(lambda_env.history, "append", busy)
    with pytest.raises(HistoryBusy):  # EventBridge tries a failed invocation again; a refusal it would not
        publish("sales", 1)


class NoInvoker:
    def invoke_async(self, payload: Any) -> None:
        pass  # the open packet is not this test's subject


def test_a_socketio_disconnect_after_its_disconnect_event_still_ends_the_session(
    lambda_env, management_api, monkeypatch
):
    """API Gateway may run `$disconnect` before the `41` the client sent just before closing."""
    from handlers import connect

    monkeypatch.setattr(lambda_env, "open_invoker", lambda: NoInvoker())
    assert connect.handler(load_event("connect", A, queryStringParameters={"EIO": "4", "transport": "websocket"}), None)
    assert default.handler(frame_event(A, "40"), None)["body"] == "6"
    pid = json.loads(management_api.raw_frames(A)[-1][2:])["pid"]
    leave(A)  # $disconnect first: the session is kept
    assert default.handler(frame_event(A, "41"), None)["body"] == "6"
    connected(B)
    assert send(resume, B, "resume", {"session": pid})["recovered"] is False


def test_the_session_id_is_stored_nowhere_in_clear(lambda_env, management_api):
    session, offset = session_that_left(management_api)
    assert recover(session, offset)["recovered"] is True
    table = lambda_env.table.client.scan(TableName=lambda_env.config.table_name)["Items"]
    assert table and session not in json.dumps(table)


def test_with_recovery_off_no_session_is_started(lambda_env, management_api, monkeypatch):
    config = dataclasses.replace(lambda_env.config, recovery_window_seconds=0)
    monkeypatch.setattr(lambda_env, "config", config)
    monkeypatch.setattr(lambda_env.sessions, "window_seconds", 0)
    connected(A, "alice")
    assert send(resume, A, "resume") == {"ok": True, "recovered": False}
    assert subscribe(A)["ok"]
    table = lambda_env.table.client.scan(TableName=lambda_env.config.table_name)["Items"]
    assert not [item for item in table if "SESSION#" in item["SK"]["S"]]


def test_a_deliberate_leave_ends_the_session_even_when_a_publisher_removed_the_connection_first(
    lambda_env, management_api
):
    """A publish that meets the connection gone (410) removes it as for a drop; its `$disconnect` (1000) after
    that must still end the session."""
    connected(A, "alice")
    session = send(resume, A, "resume")["session"]
    assert join(A, "sales")["ok"]
    management_api.gone.add(A)
    publish("sales", 1)  # 410: removed, its session kept for the window
    leave(A, code=1000)
    connected(B, "alice")
    assert send(resume, B, "resume", {"session": session})["recovered"] is False
