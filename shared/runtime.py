"""The life of one client event: rate-limit, run the action, and on failure tell the client in its protocol."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.codec import decode_client_frame, encode_ack
from shared.contract import ERROR, INTERNAL_ERROR, echoed_event_name
from shared.errors import ClientError, ConnectionGone
from shared.events import WebSocketEvent
from shared.poster import Poster
from shared.protocols import JSON, server_frame
from shared.rate_limit import Token
from shared.services import Services, services

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    connection_id: str
    action: str
    data: Any
    poster: Poster
    services: Services
    protocol: str = JSON

    def send(self, event: str, payload: Any, offset: str | None = None) -> None:
        self.poster.post(self.connection_id, server_frame(self.protocol, event, payload, offset))

    def token(self) -> Token:
        """This event's rate-limit token, for the action to take in its own write on the connection's item."""
        config = self.services.config
        limiter = self.services.rate_limiter
        return limiter.token(self.connection_id, config.rate_limit_per_second, config.rate_limit_burst)


# An action returns nothing, or the fields its acknowledgement adds to {"ok": true}.
Action = Callable[[Request], "dict[str, Any] | None"]
_OWN_TOKEN: set[Action] = set()


def takes_own_token(action: Action) -> Action:
    """Mark an action that takes its rate-limit token itself (Request.token), in the write it makes anyway on the
    connection's item, and on every other way out (bad input, a refusal) in an update of its own."""
    _OWN_TOKEN.add(action)
    return action


@dataclass(frozen=True)
class Outcome:
    """What became of one client event: the route's status code and, on failure, the client's message."""

    status: int = 200
    error: str | None = None
    result: dict[str, Any] | None = None


def handle_message(raw_event: dict[str, Any], context: Any, action: Action) -> dict[str, Any]:
    """A JSON frame `{"action", "data"}` on its own route (or `$default`): the route response is the ack."""
    event = WebSocketEvent(raw_event)
    svc = services(context)
    poster = svc.poster(event.management_endpoint)
    # The route names the event even when the frame itself cannot be read (too large, not JSON).
    name = None if event.route_key.startswith("$") else event.route_key
    try:
        frame = decode_client_frame(event.body)
    except ClientError as error:
        outcome = refuse(svc, poster, event.connection_id, JSON, name, error)
    else:
        outcome = perform(svc, poster, event.connection_id, JSON, frame.action, frame.data, action)
    return {"statusCode": outcome.status, "body": encode_ack(outcome.error, outcome.result)}


def perform(
    svc: Services, poster: Poster, connection_id: str, protocol: str, name: str, data: Any, action: Action
) -> Outcome:
    """Take a rate-limit token (unless the action takes its own) and run the action; a failure is told to the
    client as analytics:error."""
    try:
        if action not in _OWN_TOKEN:
            config = svc.config
            svc.rate_limiter.take(connection_id, config.rate_limit_per_second, config.rate_limit_burst)
        result = action(Request(connection_id, name, data, poster, svc, protocol))
    except ClientError as error:
        return refuse(svc, poster, connection_id, protocol, name, error)
    except ConnectionGone:
        logger.debug("%s: connection %s left before its answer", name, connection_id)
        svc.store.remove_connection(connection_id)
        return Outcome(410, "Connection gone")
    except Exception:
        logger.exception("%s failed", echoed_event_name(name))  # connection ids at DEBUG only
        logger.debug("%s failed for %s", echoed_event_name(name), connection_id)
        return _tell(svc, poster, connection_id, protocol, name, INTERNAL_ERROR, 500)
    return Outcome(result=result)


def refuse(
    svc: Services, poster: Poster, connection_id: str, protocol: str, name: str | None, error: ClientError
) -> Outcome:
    logger.debug("%s refused for %s: %s", echoed_event_name(name or "frame"), connection_id, error.message)
    return _tell(svc, poster, connection_id, protocol, name, error.message, error.status_code)


def _tell(
    svc: Services, poster: Poster, connection_id: str, protocol: str, name: str | None, message: str, status: int
) -> Outcome:
    payload: dict[str, Any] = {"message": message}
    if name is not None:
        payload["event"] = echoed_event_name(name)
    try:
        poster.post(connection_id, server_frame(protocol, ERROR, payload))
    except ConnectionGone:
        svc.store.remove_connection(connection_id)
    except Exception:
        logger.exception("could not tell a connection about its error")
        logger.debug("could not tell %s about its error", connection_id)
    return Outcome(status, message)
