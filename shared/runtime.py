"""The life of one WebSocket message: decode, run the action, answer with an ack and, on failure, an error."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from shared.codec import decode_client_frame, encode_ack, encode_server_frame
from shared.errors import ClientError, ConnectionGone
from shared.events import WebSocketEvent
from shared.poster import Poster
from shared.services import Services, services

logger = logging.getLogger(__name__)

ERROR_EVENT = "analytics:error"
INTERNAL_ERROR = "Internal error: the request was not applied; try again"
MAX_ECHOED_EVENT_NAME = 128


@dataclass(frozen=True)
class Request:
    connection_id: str
    action: str
    data: Any
    poster: Poster
    services: Services

    def send(self, event: str, payload: Any) -> None:
        self.poster.post(self.connection_id, encode_server_frame(event, payload))


Action = Callable[[Request], None]


def handle_message(raw_event: dict[str, Any], action: Action) -> dict[str, Any]:
    event = WebSocketEvent(raw_event)
    svc = services()
    poster = svc.poster(event.management_endpoint)
    # The route names the event even when the frame itself cannot be read (too large, not JSON).
    name: str | None = None if event.route_key.startswith("$") else event.route_key
    try:
        config = svc.config
        svc.store.take_token(event.connection_id, config.rate_limit_per_second, config.rate_limit_burst)
        frame = decode_client_frame(event.body)
        name = frame.action
        action(Request(event.connection_id, frame.action, frame.data, poster, svc))
    except ClientError as error:
        logger.info("%s refused for %s: %s", event.route_key, event.connection_id, error.message)
        return _refuse(svc, poster, event.connection_id, name, error.message, error.status_code)
    except ConnectionGone:
        logger.info("%s: connection %s left before its answer", event.route_key, event.connection_id)
        svc.store.remove_connection(event.connection_id)
        return {"statusCode": 410, "body": encode_ack("Connection gone")}
    except Exception:
        logger.exception("%s failed for %s", event.route_key, event.connection_id)
        return _refuse(svc, poster, event.connection_id, name, INTERNAL_ERROR, 500)
    return {"statusCode": 200, "body": encode_ack()}


def _refuse(
    svc: Services, poster: Poster, connection_id: str, name: str | None, message: str, status: int
) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message}
    if name is not None:
        payload["event"] = name[:MAX_ECHOED_EVENT_NAME]
    try:
        poster.post(connection_id, encode_server_frame(ERROR_EVENT, payload))
    except ConnectionGone:
        svc.store.remove_connection(connection_id)
    except Exception:
        logger.exception("could not tell %s about its error", connection_id)
    return {"statusCode": status, "body": encode_ack(message)}
