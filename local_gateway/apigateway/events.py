"""The events API Gateway and EventBridge hand to Lambda, built as they would build them."""

from __future__ import annotations

import base64
import random
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from local_gateway.origins import page_scheme
from shared.services import Services

API_ID = "local"
STAGE = "local"
ACCOUNT = "000000000000"
REGION = "us-east-1"
NO_STATUS = 1005  # a close frame without a status code


@dataclass
class ConnectionInfo:
    connection_id: str
    source_ip: str
    user_agent: str
    domain_name: str
    stage: str = STAGE
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)


def _request_id() -> str:
    """An id of a request or a message: unique, not secret, so drawn from `random`, cheaper than uuid4's
    os.urandom (four ids for each message, the Lambda context's included)."""
    return f"{random.getrandbits(64):016x}="


@lru_cache(maxsize=4)
def _clf_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _clf_time(epoch: float) -> str:
    """`requestTime` as API Gateway writes it, to the second: formatted once a second, not once an event."""
    return _clf_second(int(epoch))


def _request_context(info: ConnectionInfo, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    context = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": _request_id(),
        "requestTime": _clf_time(now),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": int(info.connected_at * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"userAgent": info.user_agent, "sourceIp": info.source_ip},
        "requestId": _request_id(),
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": API_ID,
    }
    context.update(extra)
    return context


def header_name(name: str) -> str:
    """A header's name as clients write it (ASGI hands them over lowercased): `Sec-WebSocket-Key`, `User-Agent`."""
    return "-".join("WebSocket" if part == "websocket" else part.capitalize() for part in name.lower().split("-"))


def request_headers(raw: Iterable[tuple[str, str]], source_ip: str, port: int, scheme: str) -> list[tuple[str, str]]:
    """The upgrade request's headers as API Gateway hands them on: the client's, and the ones its endpoint adds."""
    trace = f"Root=1-{int(time.time()):08x}-{random.getrandbits(96):024x}"
    added = {"X-Amzn-Trace-Id": trace, "X-Forwarded-For": source_ip, "X-Forwarded-Port": str(port)}
    added["X-Forwarded-Proto"] = scheme
    named = [(name, value) for name, value in ((header_name(name), value) for name, value in raw) if name not in added]
    return [*named, *added.items()]


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters ending in '='), safe in a URL path."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


def upgrade(scope: Mapping[str, Any], source_ip: str, stage: str) -> tuple[ConnectionInfo, list[tuple[str, str]]]:
    """The connection API Gateway opens for an upgrade request (its ASGI scope), and the headers its `$connect`
    event carries."""
    raw = ((name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", []))
    port = (scope.get("server") or ("127.0.0.1", 0))[1]
    headers = request_headers(raw, source_ip, port, page_scheme(scope.get("scheme", "http")))
    named = dict(headers)
    info = ConnectionInfo(
        connection_id=new_connection_id(),
        source_ip=source_ip,
        user_agent=named.get("User-Agent", ""),
        domain_name=named.get("Host", "localhost"),
        stage=stage,
    )
    return info, headers


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # the last, as API Gateway's single-value map keeps
        multi.setdefault(name, []).append(value)
    return single, multi


def connect_event(
    info: ConnectionInfo, headers: Iterable[tuple[str, str]], query: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    single_headers, multi_headers = _single_and_multi(headers)
    single_query, multi_query = _single_and_multi(query)
    return {
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": _request_context(info, "$connect", "CONNECT"),
        "isBase64Encoded": False,
    }


def message_event(info: ConnectionInfo, route_key: str, body: str) -> dict[str, Any]:
    return {
        "requestContext": _request_context(info, route_key, "MESSAGE", messageId=_request_id()),
        "body": body,
        "isBase64Encoded": False,
    }


def disconnect_event(info: ConnectionInfo, reason: str, status_code: int = NO_STATUS) -> dict[str, Any]:
    """`status_code`: the WebSocket close code, the closing side's (1005 when the close carried none or the
    endpoint cannot know it, as Engine.IO's)."""
    return {
        "headers": {"Host": info.domain_name, "x-api-key": "", "x-restapi": ""},
        "multiValueHeaders": {},
        "requestContext": _request_context(
            info, "$disconnect", "DISCONNECT", disconnectStatusCode=status_code, disconnectReason=reason
        ),
        "isBase64Encoded": False,
    }


def eventbridge_event(source: str, detail_type: str, detail: Any, resources: list[str] | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": resources or [],
        "detail": detail,
    }


def scheduled_event() -> dict[str, Any]:
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/local-publish-metrics"
    return eventbridge_event("aws.events", "Scheduled Event", {}, [rule])


@dataclass
class LambdaContext:
    """What a handler may ask of its context object."""

    function_name: str
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.UUID(int=random.getrandbits(128), version=4)))
    memory_limit_in_mb: int = 256
    services: Services | None = None  # the host's collaborators, handed in (shared/services.py); not in AWS's
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))
