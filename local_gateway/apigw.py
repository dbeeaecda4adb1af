"""The events API Gateway and EventBridge hand to Lambda, built as they would build them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_ID = "local"
STAGE = "local"
ACCOUNT = "000000000000"
REGION = "us-east-1"


@dataclass
class ConnectionInfo:
    connection_id: str
    source_ip: str
    user_agent: str
    domain_name: str
    stage: str = STAGE
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)


def _clf_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _request_context(info: ConnectionInfo, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    context = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16] + "=",
        "requestTime": _clf_time(now),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": int(info.connected_at * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"userAgent": info.user_agent, "sourceIp": info.source_ip},
        "requestId": uuid.uuid4().hex[:16] + "=",
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": API_ID,
    }
    context.update(extra)
    return context


def connect_event(info: ConnectionInfo, headers: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "requestContext": _request_context(info, "$connect", "CONNECT"),
        "isBase64Encoded": False,
    }


def message_event(info: ConnectionInfo, route_key: str, body: str) -> dict[str, Any]:
    return {
        "requestContext": _request_context(info, route_key, "MESSAGE", messageId=uuid.uuid4().hex[:16] + "="),
        "body": body,
        "isBase64Encoded": False,
    }


def disconnect_event(info: ConnectionInfo, reason: str) -> dict[str, Any]:
    return {
        "headers": {"Host": info.domain_name, "x-api-key": "", "x-restapi": ""},
        "multiValueHeaders": {},
        "requestContext": _request_context(
            info, "$disconnect", "DISCONNECT", disconnectStatusCode=1005, disconnectReason=reason
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
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))
