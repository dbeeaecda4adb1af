"""The hand-over between a replay (a recovery's, or a join's last value) and live delivery, so that every update
reaches the connection once, and in order, whichever of the two delivers it.

A membership (ROOM#d / CONN#c) being replayed to is written with `recovering`, a deadline: until then publishers
do not post to it. A publisher that finds it so sets `queuedMax` to its seq instead (only upwards), so the replay
knows there is more. The replay sends what the history holds, then ends the hand-over with one conditional write
that holds only when nothing newer than what it sent was queued: it sets `deliveredSeq` and drops `recovering`.
From then on publishers post live, and skip any seq up to `deliveredSeq`. A publisher whose queueing write fails
because the hand-over ended reads the outcome from the failed condition's item. Every step is one conditional
write on the membership item, so DynamoDB orders them: no update is replayed and posted both, and none is
neither (a publisher that read the members before the membership existed wrote its update to the history first,
and the replay reads the history after writing the membership). A replay that dies leaves its deadline behind:
past it, publishers post live again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import ConditionFailed
from shared.history import History, Update
from shared.protocols import JSON
from shared.table import Table, connection_key, num, room_key, text

RECOVERING = "recovering"
RECOVERING_SECONDS = 30  # longer than any function that replays runs (their timeout is 10 s)


def recovering_until(table: Table) -> int:
    """The deadline a new recovering membership carries, in ms."""
    return int((table.clock() + RECOVERING_SECONDS) * 1000)


def membership_key(dashboard_id: str, connection_id: str) -> dict[str, Any]:
    return {"PK": text(room_key(dashboard_id)), "SK": text(connection_key(connection_id))}


def hand_over(
    table: Table, history: History, connection_id: str, positions: dict[str, int], send: Callable[[Update], None]
) -> None:
    """End the hand-over of each dashboard (its seq replayed up to `positions[d]`), sending what publishers queued
    meanwhile first: in publish time order across the dashboards, so the client's last offset only moves on."""
    pending = dict(positions)
    while pending:
        tails: list[Update] = []
        for dashboard_id, seq in list(pending.items()):
            if _finish(table, dashboard_id, connection_id, seq) is not False:
                del pending[dashboard_id]  # done, or the connection left
            else:
                tails += history.after(dashboard_id, seq)
        for update in sorted(tails, key=lambda u: (u.ms, u.dashboard_id)):
            send(update)
            pending[update.dashboard_id] = max(pending[update.dashboard_id], update.seq)


def _finish(table: Table, dashboard_id: str, connection_id: str, replayed_seq: int) -> bool | None:
    """True when the hand-over has ended, False when a publisher queued a newer update (send it and try again),
    None when the membership is gone (the connection left)."""
    try:
        table.call(
            "update_item",
            Key=membership_key(dashboard_id, connection_id),
            UpdateExpression=f"REMOVE {RECOVERING} SET deliveredSeq = :seq",
            ConditionExpression=f"attribute_exists({RECOVERING})"
            " AND (attribute_not_exists(queuedMax) OR queuedMax <= :seq)",
            ExpressionAttributeValues={":seq": num(replayed_seq)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return True
    except ConditionFailed as failed:
        return None if failed.item is None or RECOVERING not in failed.item else False


def live_recipients(table: Table, dashboard_id: str, seq: int) -> list[tuple[str, str]]:
    """(connection id, protocol) of the members update `seq` is posted to; recovering members are handed it."""
    recipients: list[tuple[str, str]] = []
    now_ms = int(table.clock() * 1000)
    for page in table.items(
        KeyConditionExpression="PK = :room AND begins_with(SK, :conn)",
        FilterExpression="expiresAt > :now",
        ExpressionAttributeValues={
            ":room": text(room_key(dashboard_id)),
            ":conn": text("CONN#"),
            ":now": num(now_ms // 1000),
        },
        ProjectionExpression=f"SK, protocol, {RECOVERING}, deliveredSeq",
        ConsistentRead=True,  # a membership written just before this read must be seen
    ):
        for item in page:
            connection_id = item["SK"]["S"].removeprefix("CONN#")
            membership = _queue(table, dashboard_id, connection_id, seq, now_ms) if _recovering(item, now_ms) else item
            if membership is None or _recovering(membership, now_ms):
                continue  # gone, or the replay sends it
            if seq > int(membership.get("deliveredSeq", {"N": "0"})["N"]):
                recipients.append((connection_id, membership.get("protocol", {}).get("S", JSON)))
    return recipients


def _recovering(item: dict[str, Any], now_ms: int) -> bool:
    return RECOVERING in item and int(item[RECOVERING]["N"]) > now_ms


def _queue(table: Table, dashboard_id: str, connection_id: str, seq: int, now_ms: int) -> dict[str, Any] | None:
    """Tell the replay there is `seq` to send; the membership as it stands when the hand-over has ended (None when
    it is gone), or one still recovering when the replay will send it."""
    try:
        table.call(
            "update_item",
            Key=membership_key(dashboard_id, connection_id),
            UpdateExpression="SET queuedMax = :seq",
            ConditionExpression=f"{RECOVERING} > :now AND (attribute_not_exists(queuedMax) OR queuedMax < :seq)",
            ExpressionAttributeValues={":seq": num(seq), ":now": num(now_ms)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return {RECOVERING: num(now_ms + 1)}
    except ConditionFailed as failed:
        return failed.item
