"""$connect: register the connection, or refuse it."""

from __future__ import annotations

import logging
from typing import Any

from shared.connections import connect
from shared.errors import ClientError
from shared.events import WebSocketEvent
from shared.refusals import answering_refusals
from shared.services import services


def _message(error: ClientError) -> str:
    return error.message


@answering_refusals("refused a connection", level=logging.INFO, body=_message)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connect(services(context), WebSocketEvent(event))
    return {"statusCode": 200, "body": "Connected"}
