"""The functions' one answer to a refused request: a ClientError, logged and turned into the function's result."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from shared.errors import ClientError

Handler = Callable[[Any, Any], dict[str, Any]]


def json_error(error: ClientError) -> str:
    return json.dumps({"error": error.message})


def answering_refusals(
    refused: str, level: int = logging.WARNING, body: Callable[[ClientError], str] = json_error
) -> Callable[[Handler], Handler]:
    """A ClientError raised by the handler becomes `{"statusCode": its status, "body": body(error)}`, logged as
    "<refused>: <message>" at `level` by the handler's own module logger (never its connection id above DEBUG)."""

    def wrap(handler: Handler) -> Handler:
        logger = logging.getLogger(handler.__module__)

        @functools.wraps(handler)
        def answered(event: Any, context: Any) -> dict[str, Any]:
            try:
                return handler(event, context)
            except ClientError as error:
                logger.log(level, "%s: %s", refused, error.message)
                context_of_request = event.get("requestContext") if isinstance(event, dict) else None
                if isinstance(context_of_request, dict) and "connectionId" in context_of_request:
                    logger.debug("%s for connection %s", refused, context_of_request["connectionId"])
                return {"statusCode": error.status_code, "body": body(error)}

        return answered

    return wrap


def ok(result: Any) -> dict[str, Any]:
    """A function's success, its result as JSON."""
    return {"statusCode": 200, "body": json.dumps(result)}
