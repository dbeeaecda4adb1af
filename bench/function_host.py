"""The functions run in this process, as the gateway's pool runs them: the events API Gateway hands them, and their
collaborators on the embedded DynamoDB (its in-process client), posting to a poster of the caller's choosing.

bench/function_cpu.py times them so, and bench/functions_inline.py serves Socket.IO clients with them.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_local_credentials, ensure_table
from local_gateway.template import template
from shared.clients import client_config
from shared.codec import encode_client_frame
from shared.config import CONNECTIONS_ENDPOINT_URL, TABLE_NAME, Config
from shared.poster import Poster
from shared.services import Services

# Where the functions would post: never reached, as every post goes to the caller's poster.
LOCAL_ENDPOINT = "http://localhost:4000/local"


def event(
    kind: str, connection_id: str, action: str | None = None, data: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """The API Gateway event of a `connect`, `disconnect` or `message` (of `action`, with `data` unless None), with
    what the functions read of it; `query` is a `$connect`'s query string."""
    route = {"connect": "$connect", "disconnect": "$disconnect"}.get(kind, action)
    context = {
        "routeKey": route,
        "eventType": kind.upper(),
        "connectionId": connection_id,
        "domainName": "localhost",
        "stage": "local",
        "requestTimeEpoch": int(time.time() * 1000),
    }
    built: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if kind == "message":
        assert action is not None, "a message names its action"
        built["body"] = encode_client_frame(action, *([] if data is None else [data]))
    else:
        built["headers"], built["queryStringParameters"] = {}, query or None
    return built


def embedded_services(poster: Poster) -> Services:
    """What `make run` gives the functions (Config.from_env's defaults: the rate limiter on), on a table of their own
    in a fresh embedded DynamoDB; every post goes to `poster`."""
    ensure_local_credentials()
    environ = {**os.environ, TABLE_NAME: f"bench-{uuid.uuid4().hex[:8]}", CONNECTIONS_ENDPOINT_URL: LOCAL_ENDPOINT}
    embedded = EmbeddedDynamoDB()
    svc = Services.from_config(
        Config.from_env(environ), poster_factory=lambda _: poster, dynamodb=embedded.client(client_config())
    )
    ensure_table(svc.table.client, svc.config.table_name, template())
    return svc
