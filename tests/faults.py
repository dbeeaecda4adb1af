"""Faults injected at the AWS boundary: a botocore `before-send` hook answers chosen calls as DynamoDB would fail.

Nothing of the project's own code is replaced: the request is built, signed and retried by botocore as in AWS;
only the answer of the wire is substituted, or another request is made to land just before it.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from local_gateway.dynamodb.moto_transports import BodyStream

ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#{}"


class _SendPathReached(Exception):
    pass


def through_direct_transport(client: Any) -> bool:
    """True for a client whose item reads never reach botocore's send path (nor its hooks), seen by its behaviour:
    a Query of a missing table (which no item engine answers) is stopped here if it reaches `before-send`."""

    def stop(**_: Any) -> None:
        raise _SendPathReached

    client.meta.events.register_first("before-send.dynamodb", stop)
    try:
        client.query(
            TableName="no-such-table", KeyConditionExpression="k = :k", ExpressionAttributeValues={":k": {"S": "k"}}
        )
    except _SendPathReached:
        return False
    except ClientError:
        return True  # answered (a missing table) before the send path
    finally:
        client.meta.events.unregister("before-send.dynamodb", stop)
    return True


def aws_response(url: str, status: int, body: dict[str, Any]) -> AWSResponse:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "Content-Length": str(len(data))}
    return AWSResponse(url, status, headers, BodyStream(data))


@dataclass
class Fault:
    operation: str
    status: int
    code: str
    times: int | None  # None: every time
    when: Callable[[dict[str, Any]], bool] | None
    respond: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    deliver: bool = False  # the request reaches DynamoDB first: only its answer is lost


@dataclass
class Interleaving:
    operation: str
    action: Callable[[], Any]
    when: Callable[[dict[str, Any]], bool] | None


class DynamoDBFaults:
    """`faults.fail("UpdateItem", times=2)`: the next two UpdateItem calls get 400 ThrottlingException."""

    def __init__(self, client: Any, endpoint_url: str | None = None) -> None:
        if through_direct_transport(client):
            raise ValueError("faults need botocore's send path: mark the test dynamodb_wire (tests/conftest.py)")
        self.client = client
        # Where a request whose answer is lost is delivered: moto's HTTP port (the functions' own client has no
        # endpoint of its own: moto answers it in-process, after this hook).
        self.endpoint_url = endpoint_url
        self.calls: Counter[str] = Counter()  # every attempt that reached the wire, by operation
        self.sent: list[tuple[str, dict[str, Any]]] = []  # every attempt, in order: (operation, request body)
        self.injected: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()  # requests whose answer was lost, that DynamoDB applied (200)
        self._faults: list[Fault] = []
        self._interleavings: list[Interleaving] = []
        self._at: list[tuple[int, Callable[[], Any]]] = []  # (call number, action): see interleave_at
        self._seen = 0  # calls seen, those of an interleaved action aside
        self._acting = False
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

    def lose_answer(
        self, operation: str, times: int | None = 1, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        """The next `times` calls reach DynamoDB and are applied, but their answer is lost: 500 InternalServerError,
        which botocore retries as it would a DynamoDB that failed after writing."""
        if self.endpoint_url is None:
            raise ValueError("lose_answer needs the endpoint_url the requests are delivered to")
        self._faults.append(Fault(operation, 500, "InternalServerError", times, when, deliver=True))

    def interleave(
        self, operation: str, action: Callable[[], Any], when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        """Run `action` once, just before the first matching call goes out: another request landing between two
        writes of one. Its own calls go through the same client, and through these faults."""
        self._interleavings.append(Interleaving(operation, action, when))

    def interleave_at(self, index: int, action: Callable[[], Any]) -> None:
        """Run `action` once, just before the `index`-th call from now (0: the next), whatever its operation: a
        concurrent request landing at any chosen step of a sequence of calls."""
        with self._lock:
            self._at.append((self._seen + index, action))

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        if not self._acting:
            with self._lock:
                number, self._seen = self._seen, self._seen + 1
                now = [action for at, action in self._at if at == number]
                self._at = [(at, action) for at, action in self._at if at != number]
            for action in now:
                self._acting = True  # its own calls are not counted
                try:
                    action()
                finally:
                    self._acting = False
        with self._lock:
            due = [i for i in self._interleavings if i.operation == operation and (i.when is None or i.when(body))]
            for interleaving in due:
                self._interleavings.remove(interleaving)
        for interleaving in due:  # outside the lock: its calls come back through this hook
            interleaving.action()
        with self._lock:
            self.calls[operation] += 1
            self.sent.append((operation, body))
            for fault in self._faults:
                if fault.operation != operation or fault.times == 0:
                    continue
                if fault.when is not None and not fault.when(body):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                self.injected[operation] += 1
                if fault.deliver and _deliver(request, str(self.endpoint_url)) == 200:
                    self.applied[operation] += 1
                if fault.respond is not None:
                    return aws_response(request.url, 200, fault.respond(body))
                message = {"__type": ERROR_TYPE.format(fault.code), "message": f"injected {fault.code}"}
                return aws_response(request.url, fault.status, message)
        return None


def _deliver(request: Any, endpoint_url: str) -> int:
    """Send the request as it is to `endpoint_url` (moto's HTTP port on loopback), straight, without any proxy;
    its answer (a failed condition too) is dropped, its status returned."""
    headers = {name: value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}
    path = urllib.parse.urlsplit(request.url).path or "/"
    outgoing = urllib.request.Request(
        endpoint_url.rstrip("/") + path, data=request.body, headers=headers, method=request.method
    )
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(outgoing, timeout=10) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
