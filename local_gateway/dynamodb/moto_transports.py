"""The two ways a boto3 DynamoDB client reaches moto in this process, both under the embedded DynamoDB's lock.

- The direct transport (the functions' client, for item reads and writes): botocore validates the request against
  the service model and runs its hooks, without building it (local_gateway/dynamodb/direct_calls.py); at botocore's
  `before-call` (the hook botocore's own Stubber answers at) the item engine answers what it can of
  them on moto's tables (local_gateway/dynamodb/item_engine.py), or else moto's DynamoHandler
  runs the operation on the serialized parameters and botocore's JSON parser reads moto's answer, modeled
  error fields included. No signing, no HTTP request, no retry loop: moto never throttles. About a twentieth
  of the CPU of the wire transport (`bench/dynamodb_transports.py`).
- The wire transport: the request goes all the way through botocore's send path (signed, `before-send` hooks, the
  retry loop) and moto's own botocore hook (the one `mock_aws` installs) answers it as the last `before-send`
  hook. Faults injected at botocore's boundary (tests/faults.py) need this path; nothing else does.

Both serve the same moto backend as moto's HTTP server, so all three ways in see the same tables.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
import threading
from collections.abc import Callable
from typing import Any, cast

from local_gateway.dynamodb.direct_calls import skip_request_building
from local_gateway.dynamodb.indexes import moto_answered
from local_gateway.dynamodb.item_engine import OPERATIONS as ENGINE_OPERATIONS
from local_gateway.dynamodb.item_engine import ItemEngine

# The item reads and writes the product sends, whose answers are plain JSON. Everything else (CreateTable, a
# waiter's DescribeTable, UpdateTimeToLive: answers with timestamps, which moto's serializer formats; a test's
# Scan) takes the wire transport. They are the item engine's (moto answers those it declines).
DIRECT_OPERATIONS = ENGINE_OPERATIONS
# Each random byte read as one of moto's 36 request id characters (256 = 7 x 36 + 4: a bias no one reads)
_REQUEST_ID_CHARACTERS = bytes((string.ascii_uppercase + string.digits).encode()[i % 36] for i in range(256))


def install_direct_transport(client: Any, lock: threading.Lock, engine: ItemEngine | None) -> None:
    """The client's item reads and writes answered in this process: by `engine` first (None: moto alone)."""
    from botocore.awsrequest import AWSResponse
    from botocore.parsers import create_parser
    from botocore.serialize import create_serializer
    from moto.core.exceptions import ServiceException
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.utils import camelcase_to_underscores, get_service_model
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import DynamoHandler
    from werkzeug.exceptions import HTTPException

    parser = create_parser("json")
    serializer = create_serializer("json")
    moto_model = get_service_model("dynamodb")
    region = client.meta.region_name
    # Per operation, once: moto's own parser of its body, as its HTTP server reads it (blobs decoded from base64,
    # for one), and the DynamoHandler method that runs it.
    operations = {
        name: (
            PROTOCOL_PARSERS["json"](moto_model.operation_model(name), map_type=dict).parse,
            camelcase_to_underscores(name),
        )
        for name in DIRECT_OPERATIONS
    }
    accounts: dict[tuple[str | None, str], str] = {}

    def account() -> str:
        """As moto's HTTP server works it out for each request (MOTO_ACCOUNT_ID, else the access key), looked up
        once per pair: the lookup walks every IAM backend."""
        key = (os.environ.get("MOTO_ACCOUNT_ID"), _access_key(client))
        if key not in accounts:
            handler = DynamoHandler()
            handler.headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential={key[1]}/"}
            handler.querystring = {}
            accounts[key] = handler.get_current_account()
        return accounts[key]

    def answer(model: Any, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if model.name not in DIRECT_OPERATIONS:
            return None  # on to the wire transport
        account_id = account()
        if engine is not None:
            with lock:
                fast = engine.answer(model.name, params["body"], dynamodb_backends[account_id][region])
            if fast is not None:
                return _engine_response(params["url"], *fast)
        body = serializer.serialize_to_request(params["body"], model)["body"]  # unserialized: direct_calls.py
        parse, method = operations[model.name]
        handler = DynamoHandler()
        handler.current_account = account_id
        request = {
            "method": "POST",
            "values": {},
            "headers": {},
            "body": body,
            "url_path": "/",
            "url_params": {},
        }
        handler.body = handler.params = parse(cast(Any, request))
        handler.region, handler.querystring, handler.uri_match = region, {}, {}
        operation = getattr(handler, method)
        with lock:
            try:
                status, answer_body = 200, json.dumps(operation().result, default=_base64).encode()
            except HTTPException as error:  # moto's DynamoDB errors: what its HTTP server answers, body and status
                status, answer_body = error.code or 500, error.get_body().encode()
            except ServiceException as error:  # moto's newer style, none in DynamoDB yet: the JSON protocol's error
                status, answer_body = 400, json.dumps({"__type": error.code, "message": error.message}).encode()
            finally:
                moto_answered(model.name)  # it may have written in place: the item engine's indexes are built again
        headers = _headers()
        response = {"status_code": status, "headers": headers, "body": answer_body}
        parsed = parser.parse(response, model.output_shape)
        if status >= 300:
            _add_modeled_error_fields(parser, model, response, parsed)
        parsed["ResponseMetadata"]["RetryAttempts"] = 0
        return AWSResponse(params["url"], status, headers, BodyStream(answer_body)), parsed

    # Last: a test's before-call observer (tests/test_performance.py counts calls) still sees every call.
    client.meta.events.register_last("before-call.dynamodb", answer)
    skip_request_building(client, DIRECT_OPERATIONS)
    install_wire_transport(client, lock)


def _engine_response(url: str, status: int, answer: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The engine's answer as botocore's parser would have read it from moto's; its body is written only if read."""
    from botocore.awsrequest import AWSResponse

    headers = _headers()
    metadata = {"RequestId": headers["x-amzn-requestid"], "HTTPStatusCode": status, "HTTPHeaders": headers}
    parsed = {**answer, "ResponseMetadata": {**metadata, "RetryAttempts": 0}}
    body = BodyStream(lambda: json.dumps(answer, default=_base64).encode())
    return AWSResponse(url, status, headers, body), parsed


def _headers() -> dict[str, str]:
    """An answer's headers; the request id drawn as moto draws it (52 upper-case letters and digits), cheaper."""
    request_id = random.randbytes(52).translate(_REQUEST_ID_CHARACTERS).decode()
    return {"x-amzn-requestid": request_id, "content-type": "application/x-amz-json-1.0"}


def _base64(value: Any) -> str:
    """A binary attribute's bytes, as the JSON protocol carries them (botocore's parser decodes them back)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} in moto's answer is not JSON")


def install_wire_transport(client: Any, lock: threading.Lock) -> None:
    from moto.core.botocore_stubber import BotocoreStubber

    stubber = BotocoreStubber()
    stubber.enabled = True

    def answer(request: Any, event_name: str) -> Any:
        with lock:
            try:
                response = stubber(event_name, request)
            finally:
                moto_answered(event_name.rpartition(".")[2])  # before-send.dynamodb.<operation>
        if response is None:  # never let a request leave for the real endpoint the client is named after
            raise RuntimeError(f"moto did not serve the DynamoDB request to {request.url}")
        return response

    def serve(request: Any, event_name: str = "", **_: Any) -> Any:
        return _Deferred(lambda: answer(request, event_name))

    # After any other hook (a test's injected faults): the first answer is the one botocore takes.
    client.meta.events.register_last("before-send.dynamodb", serve)


def _access_key(client: Any) -> str:
    credentials = client._request_signer._credentials  # the client's own, whatever provided them
    return credentials.access_key if credentials is not None else ""


def _add_modeled_error_fields(parser: Any, model: Any, response: dict[str, Any], parsed: dict[str, Any]) -> None:
    """What botocore's endpoint adds to an error it parses: the fields of the error's modeled shape (the item
    of a ConditionalCheckFailedException asked for with ReturnValuesOnConditionCheckFailure). The same steps as
    botocore's private `Endpoint._add_modeled_error_fields` (botocore 1.44.5), which no public API exposes."""
    shape = model.service_model.shape_for_error_code(parsed.get("Error", {}).get("Code"))
    if shape is not None:
        parsed.update(parser.parse(response, shape))


class BodyStream:
    """A whole HTTP body as botocore's AWSResponse reads it (`raw.stream()`): bytes, or what writes them when
    someone reads it (the engine's answers, whose body nobody usually reads)."""

    def __init__(self, body: bytes | Callable[[], bytes]) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body if isinstance(self._body, bytes) else self._body()


class _Deferred:
    """moto's answer, computed when botocore first reads it. botocore calls every `before-send` hook and takes
    the first answer; a hook before ours that answers (a test's injected fault) leaves this one unread, so moto
    never runs a request whose answer nobody takes, as a real endpoint never sees it."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute
        self._answer: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._answer is None:
            self._answer = self._compute()
        return getattr(self._answer, name)
