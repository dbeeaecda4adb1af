"""Joining and leaving a dashboard as two single-item writes each, never a transaction: their order, the
membership taken back when the second write refuses, what lands between the two writes (a disconnect, another
join), and writes whose answer was lost. All injected at the botocore boundary (tests/faults.py) over moto.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from handlers import disconnect
from shared.contract import INTERNAL_ERROR
from shared.counters import Counts
from shared.errors import ClientError, ConnectionNotFound, Forbidden, TooManyRooms
from shared.items import room_ids
from shared.table import own_key, room_key
from tests.faults import DynamoDBFaults
from tests.handler_calls import (
    ATTEMPTS,
    NOT_REGISTERED,
    connected,
    connection_item,
    join,
    keys,
    leave,
    owned_by,
    recount,
)
from tests.support.events import disconnect_event

pytestmark = pytest.mark.dynamodb_wire  # faults are injected at botocore's boundary

A = "AAAAAAAAAAAAAAA="
CONN = (f"CONN#{A}", f"CONN#{A}")
SALES = ("ROOM#sales", f"CONN#{A}")  # A's membership of sales
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@pytest.fixture
def faults(lambda_env, moto_endpoint, monkeypatch) -> Iterator[DynamoDBFaults]:
    # botocore's real retry handler runs; only its throttling backoff scale shrinks from 1 s to 10 ms.
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.01)
    injector = DynamoDBFaults(lambda_env.table.client, endpoint_url=moto_endpoint)  # lost answers go there
    yield injector
    injector.close()


def key(body: dict) -> tuple[str, str]:
    item = body.get("Key") or body.get("Item") or {}
    return item.get("PK", {}).get("S", ""), item.get("SK", {}).get("S", "")


def writes(faults: DynamoDBFaults, since: int) -> list[tuple[str, tuple[str, str]]]:
    """The writes sent since the `since`-th call, in order: (operation, item key)."""
    return [(operation, key(body)) for operation, body in faults.sent[since:] if operation in WRITES]


def on_room_ids(body: dict) -> bool:
    """A join's or a leave's write of the connection's `roomIds` (not the rate-limit token's)."""
    return "roomIds" in body.get("UpdateExpression", "")


def on_membership(body: dict) -> bool:
    pk, sk = key(body)
    return pk.startswith("ROOM#") and sk.startswith("CONN#")


def on_room_count(body: dict) -> bool:
    pk, sk = key(body)
    return pk.startswith("ROOM#") and pk == sk


def on_totals(body: dict) -> bool:
    return key(body)[0] == "METRICS"


def members(svc, dashboard: str) -> int:
    """The room's own count of its members."""
    item = svc.table.get(own_key(room_key(dashboard)), consistent=True) or {}
    return int(item.get("members", {"N": "0"})["N"])


def memberships(svc, cid: str) -> list[str]:
    """The dashboards whose membership item names the connection, read from the table itself."""
    return sorted(pk.removeprefix("ROOM#") for pk, sk in keys(svc) if pk.startswith("ROOM#") and sk == f"CONN#{cid}")


def rooms_of(svc, cid: str) -> list[str]:
    return room_ids(connection_item(svc, cid))


def disconnected(cid: str) -> Callable[[], Any]:
    return lambda: disconnect.handler(disconnect_event(cid), None)


# -- the writes, in order ---------------------------------------------------------------------
def test_a_join_puts_the_membership_then_adds_the_room_to_the_connection_without_a_transaction(lambda_env, faults):
    connected(A)
    start = len(faults.sent)
    assert lambda_env.rooms.join_room(A, "sales", 20)
    assert writes(faults, start) == [
        ("PutItem", SALES),
        ("UpdateItem", CONN),
        ("UpdateItem", ("ROOM#sales", "ROOM#sales")),
        ("UpdateItem", ("METRICS", "COUNTS")),
    ]


def test_a_leave_takes_the_room_off_the_connection_then_deletes_the_membership_without_a_transaction(
    lambda_env, faults
):
    connected(A)
    lambda_env.rooms.join_room(A, "sales", 20)
    start = len(faults.sent)
    assert lambda_env.rooms.leave_room(A, "sales")
    assert writes(faults, start) == [
        ("UpdateItem", CONN),
        ("DeleteItem", SALES),
        ("UpdateItem", ("ROOM#sales", "ROOM#sales")),
        ("UpdateItem", ("METRICS", "COUNTS")),
    ]
    assert memberships(lambda_env, A) == [] and rooms_of(lambda_env, A) == []


@pytest.mark.parametrize(
    ("refusal", "error"),
    [
        ("at the limit", TooManyRooms),
        ("not allowed", Forbidden),
        ("pending", ConnectionNotFound),
        ("absent", ConnectionNotFound),
    ],
)
def test_a_join_refused_at_its_second_write_deletes_the_membership_it_put(lambda_env, faults, refusal, error):
    store, rooms = lambda_env.store, lambda_env.rooms
    if refusal == "at the limit":
        store.add_connection(A, None)
        rooms.join_room(A, "ops", 1)
    elif refusal == "not allowed":
        store.add_connection(A, None, allowed=["ops"])
    elif refusal == "pending":
        lambda_env.pending_connections.add(A, None, None, False)
    before, start = keys(lambda_env), len(faults.sent)
    with pytest.raises(error):
        rooms.join_room(A, "sales", 1)
    assert writes(faults, start) == [("PutItem", SALES), ("UpdateItem", CONN), ("DeleteItem", SALES)]
    assert keys(lambda_env) == before


# -- a disconnect between the writes --------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "answer"),
    [
        pytest.param(on_room_ids, {"ok": False, "error": NOT_REGISTERED}, id="before-the-connection-update"),
        pytest.param(on_room_count, {"ok": True}, id="before-the-room-count"),
        pytest.param(on_totals, {"ok": True}, id="before-the-totals"),
    ],
)
def test_a_disconnect_between_the_writes_of_a_join_leaves_nothing_and_exact_counts(lambda_env, faults, before, answer):
    connected(A, "alice")
    raced: list[Any] = []
    faults.interleave("UpdateItem", lambda: raced.append(disconnected(A)()), when=before)
    assert join(A, "sales") == answer
    assert raced
    assert owned_by(lambda_env, A) == set()
    assert members(lambda_env, "sales") == 0
    assert lambda_env.counters.read() == Counts()
    assert recount(lambda_env) == Counts()


@pytest.mark.parametrize(
    ("operation", "before"),
    [
        pytest.param("DeleteItem", on_membership, id="before-the-membership-delete"),
        pytest.param("UpdateItem", on_room_count, id="before-the-room-count"),
        pytest.param("UpdateItem", on_totals, id="before-the-totals"),
    ],
)
def test_a_disconnect_between_the_writes_of_a_leave_leaves_nothing_and_exact_counts(
    lambda_env, faults, operation, before
):
    connected(A, "alice")
    join(A, "sales")
    join(A, "ops")
    raced: list[Any] = []
    faults.interleave(operation, lambda: raced.append(disconnected(A)()), when=before)
    assert leave(A, "sales") == {"ok": True}
    assert raced
    assert owned_by(lambda_env, A) == set()
    assert members(lambda_env, "sales") == members(lambda_env, "ops") == 0
    assert lambda_env.counters.read() == Counts()
    assert recount(lambda_env) == Counts()


# -- two joins of one connection at once ------------------------------------------------------------
def test_two_joins_of_different_rooms_at_once_both_land(lambda_env, faults):
    connected(A)
    raced: list[dict] = []
    faults.interleave("UpdateItem", lambda: raced.append(join(A, "ops")), when=on_room_ids)
    assert join(A, "sales") == {"ok": True}
    assert raced == [{"ok": True}]
    assert rooms_of(lambda_env, A) == memberships(lambda_env, A) == ["ops", "sales"]
    assert lambda_env.counters.read().active_dashboards == 2


def test_two_joins_at_once_for_the_last_slot_one_lands_the_other_takes_its_membership_back(lambda_env, faults):
    rooms = lambda_env.rooms
    connected(A)
    rooms.join_room(A, "hr", 2)
    raced: list[bool] = []
    faults.interleave("UpdateItem", lambda: raced.append(rooms.join_room(A, "ops", 2)), when=on_room_ids)
    with pytest.raises(TooManyRooms):
        rooms.join_room(A, "sales", 2)
    assert raced == [True]
    assert rooms_of(lambda_env, A) == memberships(lambda_env, A) == ["hr", "ops"]
    assert members(lambda_env, "sales") == 0
    assert lambda_env.counters.read().active_dashboards == 2


def test_two_joins_of_the_same_room_at_once_count_it_once(lambda_env, faults):
    connected(A)
    raced: list[dict] = []
    faults.interleave("UpdateItem", lambda: raced.append(join(A, "sales")), when=on_room_ids)
    assert join(A, "sales") == {"ok": True}
    assert raced == [{"ok": True}]  # the second found the first one's membership: already a member
    assert_in_sales_once(lambda_env)


def test_two_joins_of_the_same_room_at_once_are_both_refused_when_it_is_one_too_many(lambda_env, faults):
    rooms = lambda_env.rooms
    connected(A)
    rooms.join_room(A, "hr", 1)
    raced: list[type[ClientError]] = []

    def the_same_join_meanwhile() -> None:
        with pytest.raises(TooManyRooms) as refused:
            rooms.join_room(A, "sales", 1)  # finds the first one's membership, never "already a member"
        raced.append(refused.type)

    faults.interleave("UpdateItem", the_same_join_meanwhile, when=on_room_ids)
    with pytest.raises(TooManyRooms):
        rooms.join_room(A, "sales", 1)
    assert raced == [TooManyRooms]
    assert rooms_of(lambda_env, A) == memberships(lambda_env, A) == ["hr"]


def test_many_joins_of_one_connection_at_once_fill_it_to_the_limit_and_no_further(lambda_env):
    connected(A)
    dashboards = [f"d{n}" for n in range(8)]

    def attempt(dashboard: str) -> str:
        try:
            return "joined" if lambda_env.rooms.join_room(A, dashboard, 5) else "member"
        except TooManyRooms:
            return "refused"

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(attempt, dashboards))
    assert sorted(answers) == ["joined"] * 5 + ["refused"] * 3
    assert rooms_of(lambda_env, A) == memberships(lambda_env, A)
    assert len(rooms_of(lambda_env, A)) == 5
    assert lambda_env.counters.read().active_dashboards == 5


# -- writes that landed but whose answer was lost (botocore retries them) ---------------------------------
def assert_in_sales_once(svc) -> None:
    """A is a member of sales exactly once: its roomIds, the membership, the room's count, the active rooms."""
    assert rooms_of(svc, A) == memberships(svc, A) == ["sales"]
    assert members(svc, "sales") == 1
    assert svc.counters.read().active_dashboards == 1


def test_a_membership_put_whose_answer_was_lost_is_retried_into_one_join(lambda_env, faults):
    connected(A)
    faults.lose_answer("PutItem", when=on_membership)
    assert join(A, "sales") == {"ok": True}
    assert faults.injected["PutItem"] == faults.applied["PutItem"] == 1
    assert_in_sales_once(lambda_env)


def test_a_connection_update_whose_answer_was_lost_at_the_limit_is_one_join_not_too_many(lambda_env, faults):
    connected(A)
    faults.lose_answer("UpdateItem", when=on_room_ids)
    assert lambda_env.rooms.join_room(A, "sales", 1) is True  # the retry finds the room there: its own write
    assert faults.injected["UpdateItem"] == faults.applied["UpdateItem"] == 1
    assert_in_sales_once(lambda_env)


def test_a_leave_whose_connection_update_lost_its_answer_still_deletes_the_membership(lambda_env, faults):
    connected(A)
    join(A, "sales")
    faults.lose_answer("UpdateItem", when=on_room_ids)
    assert leave(A, "sales") == {"ok": True}
    assert faults.injected["UpdateItem"] == faults.applied["UpdateItem"] == 1
    assert rooms_of(lambda_env, A) == memberships(lambda_env, A) == []
    assert members(lambda_env, "sales") == 0
    assert lambda_env.counters.read().active_dashboards == 0


# -- errors to the end of botocore's retries ------------------------------------------------------
def test_a_join_whose_connection_update_fails_to_the_end_takes_its_membership_back(lambda_env, faults):
    connected(A)
    before, counts = keys(lambda_env), lambda_env.counters.read()
    faults.fail("UpdateItem", when=on_room_ids)
    assert join(A, "sales") == {"ok": False, "error": INTERNAL_ERROR}
    assert faults.injected["UpdateItem"] == ATTEMPTS
    assert keys(lambda_env) == before and lambda_env.counters.read() == counts


def test_a_join_whose_connection_update_landed_before_errors_to_the_end_is_joined_once(lambda_env, faults):
    connected(A)
    faults.lose_answer("UpdateItem", when=on_room_ids)
    faults.fail("UpdateItem", when=on_room_ids)  # every retry throttled: one read tells that the first landed
    assert join(A, "sales") == {"ok": True}
    assert faults.injected["UpdateItem"] == ATTEMPTS and faults.applied["UpdateItem"] == 1
    assert_in_sales_once(lambda_env)


def test_a_leave_whose_connection_update_landed_before_errors_to_the_end_is_sent_once_more_and_left_once(
    lambda_env, faults
):
    connected(A)
    join(A, "sales")
    faults.lose_answer("UpdateItem", when=on_room_ids)
    faults.fail("UpdateItem", times=ATTEMPTS - 1, when=on_room_ids)  # botocore gives up: one more send, answered
    assert leave(A, "sales") == {"ok": True}
    assert faults.injected["UpdateItem"] == ATTEMPTS and faults.applied["UpdateItem"] == 1
    assert faults.calls["GetItem"] == 0
    assert rooms_of(lambda_env, A) == memberships(lambda_env, A) == []
    assert members(lambda_env, "sales") == 0
    assert lambda_env.counters.read().active_dashboards == 0


def test_a_leave_whose_connection_update_fails_to_the_end_changes_nothing(lambda_env, faults):
    connected(A)
    join(A, "sales")
    before, counts = keys(lambda_env), lambda_env.counters.read()
    faults.fail("UpdateItem", when=on_room_ids)
    assert leave(A, "sales") == {"ok": False, "error": INTERNAL_ERROR}
    assert faults.injected["UpdateItem"] == 2 * ATTEMPTS  # botocore's attempts, twice
    assert keys(lambda_env) == before and lambda_env.counters.read() == counts


def test_a_membership_put_that_landed_before_errors_to_the_end_is_taken_back(lambda_env, faults):
    connected(A)
    before = keys(lambda_env)
    faults.lose_answer("PutItem", when=on_membership)
    faults.fail("PutItem", when=on_membership)
    assert join(A, "sales") == {"ok": False, "error": INTERNAL_ERROR}
    assert faults.injected["PutItem"] == ATTEMPTS and faults.applied["PutItem"] == 1
    assert keys(lambda_env) == before
