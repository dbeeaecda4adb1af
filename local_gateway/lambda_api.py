"""Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`), for the functions of template.yaml.

Locally, a function that invokes another (the publisher handing fan-out slices to workers) reaches the gateway
through boto3's Lambda client, the same call it makes in AWS; the function name is its logical id.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from local_gateway.app import Gateway

logger = logging.getLogger(__name__)


def lambda_routes(gateway: Gateway) -> list[Route]:
    background: set[asyncio.Task] = set()

    async def invoke(request: Request) -> Response:
        name = request.path_params["function_name"]
        handler = gateway.functions.get(name)
        if handler is None:
            return JSONResponse(
                {"Type": "User", "message": f"Function not found: {name}"},
                status_code=404,
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        try:
            event = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse(
                {"Type": "User", "message": "Could not parse request body into json"},
                status_code=400,
                headers={"x-amzn-ErrorType": "InvalidRequestContentException"},
            )
        if request.headers.get("x-amz-invocation-type") == "Event":
            task = asyncio.create_task(gateway.invoke(handler, event, name))
            background.add(task)
            task.add_done_callback(background.discard)
            return Response(status_code=202)
        return JSONResponse(await gateway.invoke(handler, event, name))

    return [Route("/2015-03-31/functions/{function_name}/invocations", invoke, methods=["POST"])]
