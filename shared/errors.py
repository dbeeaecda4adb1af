"""Domain errors. A ClientError's message is safe to show a client; nothing else ever is."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """The client's request cannot be honoured; the message says why, in the client's terms."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ClientError):
    pass


class FrameTooLarge(ClientError):
    status_code = 413


class TooManyRooms(ClientError):
    status_code = 409


class UnknownEvent(ClientError):
    status_code = 404


class ConnectionNotFound(ClientError):
    """The connection has no state: it has left, or its $connect never completed."""

    status_code = 410

    def __init__(self, connection_id: str) -> None:
        super().__init__("This connection is no longer registered; reconnect")
        self.connection_id = connection_id


class Busy(Exception):
    """Contention on our side that a retry resolves: not the caller's fault, so the function fails, and
    EventBridge (or the caller) tries again."""


class ConditionFailed(Exception):
    """A conditional write's condition did not hold. `item`: the item as it was, when the request asked for it
    (ReturnValuesOnConditionCheckFailure=ALL_OLD); None when it did not, or when there was no item."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("the condition did not hold")
        self.item = item


class ConnectionGone(Exception):
    """API Gateway answered 410 Gone: the connection has left without a $disconnect."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id} is gone")
        self.connection_id = connection_id


class Unauthorized(ClientError):
    status_code = 401


class Forbidden(ClientError):
    status_code = 403


class RateLimited(ClientError):
    status_code = 429
