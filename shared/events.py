"""Typed views of the events API Gateway and EventBridge send to the functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WebSocketEvent:
    raw: dict[str, Any]

    @property
    def _context(self) -> dict[str, Any]:
        return self.raw.get("requestContext") or {}

    @property
    def connection_id(self) -> str:
        connection_id: str = self._context["connectionId"]
        return connection_id

    @property
    def route_key(self) -> str:
        route_key: str = self._context.get("routeKey", "$default")
        return route_key

    @property
    def domain_name(self) -> str | None:
        return self._context.get("domainName")

    @property
    def stage(self) -> str | None:
        return self._context.get("stage")

    @property
    def body(self) -> str | None:
        return self.raw.get("body")

    @property
    def query(self) -> dict[str, str]:
        return self.raw.get("queryStringParameters") or {}

    @property
    def disconnect_status_code(self) -> int | None:
        """The close code `$disconnect` reports (1000: the client closed normally, on purpose)."""
        code = self._context.get("disconnectStatusCode")
        return code if isinstance(code, int) else None

    @property
    def management_endpoint(self) -> str | None:
        """The @connections endpoint API Gateway itself implies: https://{domain}/{stage}."""
        if not self.domain_name or not self.stage:
            return None
        return f"https://{self.domain_name}/{self.stage}"


@dataclass(frozen=True)
class EventBridgeEvent:
    raw: dict[str, Any]

    @property
    def source(self) -> str | None:
        return self.raw.get("source")

    @property
    def detail_type(self) -> str | None:
        return self.raw.get("detail-type")

    @property
    def event_id(self) -> str | None:
        """EventBridge's id of the event: the same when it is delivered again."""
        event_id = self.raw.get("id")
        return event_id if isinstance(event_id, str) and event_id else None

    @property
    def detail(self) -> Any:
        return self.raw.get("detail")
