"""A worker of the sharded fan-out: posts one snapshot to the slice of subscribers it was handed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shared.fanout import deliver_slice
from shared.refusals import answering_refusals, ok
from shared.services import services


@answering_refusals("fan-out slice rejected")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services(context)
    return ok(asdict(deliver_slice(svc.store, svc.poster(), event)))
