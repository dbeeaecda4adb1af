"""Faults injected at the AWS boundary: a botocore `before-send` hook answers chosen calls as DynamoDB would fail.

Nothing of the project's own code is replaced: the request is built, signed and retried by botocore as in AWS;
only the answer of the wire is substituted.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse

ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#{}"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def aws_response(url: str, status: int, body: dict[str, Any]) -> AWSResponse:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "Content-Length": str(len(data))}
    return AWSResponse(url, status, headers, _Raw(data))


@dataclass
class Fault:
    operation: str
    status: int
    code: str
    times: int | None  # None: every time
    when: Callable[[dict[str, Any]], bool] | None
    respond: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    extra: dict[str, Any] | None = None  # more fields of the error body (a transaction's CancellationReasons)


class DynamoDBFaults:
    """`faults.fail("UpdateItem", times=2)`: the next two UpdateItem calls get 400 ThrottlingException."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()  # every attempt that reached the wire, by operation
        self.injected: Counter[str] = Counter()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.dynamodb", self._before_send)

    def close(self) -> None:
        self.client.meta.events.unregister("before-send.dynamodb", self._before_send)

    def fail(
        self,
        operation: str,
        status: int = 400,
        code: str = "ThrottlingException",
        times: int | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self._faults.append(Fault(operation, status, code, times, when))

    def cancel(
        self, reasons: list[str], times: int | None = None, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        """TransactWriteItems cancelled with one reason code per item ("None" for an item that was fine), as
        DynamoDB cancels for a TransactionConflict or a ThrottlingError, which moto never does."""
        extra: dict[str, Any] = {"CancellationReasons": [{"Code": code} for code in reasons]}
        extra["Message"] = f"Transaction cancelled, please refer cancellation reasons [{', '.join(reasons)}]"
        self._faults.append(Fault("TransactWriteItems", 400, "TransactionCanceledException", times, when, None, extra))

    def answer(
        self,
        operation: str,
        respond: Callable[[dict[str, Any]], dict[str, Any]],
        times: int | None = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls (None: every one) with 200 and `respond(request)`, without reaching
        DynamoDB: a lagging index, for instance, is a Query answered with nothing."""
        self._faults.append(Fault(operation, 200, "", times, when, respond))

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        with self._lock:
            self.calls[operation] += 1
            for fault in self._faults:
                if fault.operation != operation or fault.times == 0:
                    continue
                if fault.when is not None and not fault.when(body):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                self.injected[operation] += 1
                if fault.respond is not None:
                    return aws_response(request.url, 200, fault.respond(body))
                message = {"__type": ERROR_TYPE.format(fault.code), "message": f"injected {fault.code}"}
                message.update(fault.extra or {})
                return aws_response(request.url, fault.status, message)
        return None
