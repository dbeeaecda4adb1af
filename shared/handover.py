"""The hand-over between a recovery's replay and live delivery, so that every update reaches a recovering
connection once, and in order, whichever of the two delivers it.

A recovering connection's membership (ROOM#d / CONN#c) is written with `recovering`: publishers do not post to
it. A publisher that finds it so sets `queuedMax` to its seq instead (only upwards), so the recovery knows there
is more to replay. The recovery replays the history, then ends the hand-over with one conditional write that
holds only when nothing newer than what it replayed was queued: it sets `deliveredSeq` and drops `recovering`.
From then on publishers post live, and skip any seq up to `deliveredSeq`. A publisher whose queueing write
fails because the hand-over ended reads the outcome from the failed condition's item. Every step is one
conditional write on the membership item, so DynamoDB orders them: no update is replayed and posted both, and
none is neither (a publisher that read the members before the membership existed wrote its update to the
history first, and the recovery reads the history after writing the membership).
"""

from __future__ import annotations

from typing import Any

from shared.errors import ConditionFailed
from shared.protocols import JSON
from shared.table import Table, connection_key, num, room_key, text

RECOVERING = "recovering"


def membership_key(dashboard_id: str, connection_id: str) -> dict[str, Any]:
    return {"PK": text(room_key(dashboard_id)), "SK": text(connection_key(connection_id))}


def finish(table: Table, dashboard_id: str, connection_id: str, replayed_seq: int) -> bool | None:
    """End the hand-over after replaying up to `replayed_seq`: True when done, False when a publisher queued a
    newer update (replay it and try again), None when the membership is gone (the connection left)."""
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
    for page in table.items(
        KeyConditionExpression="PK = :room AND begins_with(SK, :conn)",
        FilterExpression="expiresAt > :now",
        ExpressionAttributeValues={
            ":room": text(room_key(dashboard_id)),
            ":conn": text("CONN#"),
            ":now": num(table.clock()),
        },
        ProjectionExpression=f"SK, protocol, {RECOVERING}, deliveredSeq",
        ConsistentRead=True,  # a membership written just before this read must be seen
    ):
        for item in page:
            connection_id = item["SK"]["S"].removeprefix("CONN#")
            membership = _queue(table, dashboard_id, connection_id, seq) if RECOVERING in item else item
            if membership is None or RECOVERING in membership:
                continue  # gone, or the recovery replays it
            if seq > int(membership.get("deliveredSeq", {"N": "0"})["N"]):
                recipients.append((connection_id, membership.get("protocol", {}).get("S", JSON)))
    return recipients


def _queue(table: Table, dashboard_id: str, connection_id: str, seq: int) -> dict[str, Any] | None:
    """Tell the recovery there is `seq` to replay; the membership as it stands when the hand-over has ended
    (None when it is gone), or one with `recovering` when the recovery will replay it."""
    try:
        table.call(
            "update_item",
            Key=membership_key(dashboard_id, connection_id),
            UpdateExpression="SET queuedMax = :seq",
            ConditionExpression=f"attribute_exists({RECOVERING})"
            " AND (attribute_not_exists(queuedMax) OR queuedMax < :seq)",
            ExpressionAttributeValues={":seq": num(seq)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return {RECOVERING: {"BOOL": True}}
    except ConditionFailed as failed:
        return failed.item
