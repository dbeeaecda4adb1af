"""Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`), for the functions of template.yaml.

Locally, a function that invokes another (the publisher handing fan-out slices to workers) reaches the gateway
through boto3's Lambda client, the same call it makes in AWS; the function name is its logical id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_gateway.invoker import FunctionFailed

if TYPE_CHECKING:
    from local_gateway.invoker import FunctionInvoker, Handler

logger = logging.getLogger(__name__)


def lambda_routes(functions: dict[str, Handler], invoker: FunctionInvoker) -> list[Route]:
    background: set[asyncio.Task[None]] = set()

    async def invoke(request: Request) -> Response:
        name = request.path_params["function_name"]
        handler = functions.get(name)
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
            task = asyncio.create_task(run(handler, event, name))
            background.add(task)
            task.add_done_callback(background.discard)
            return Response(status_code=202)
        try:
            return JSONResponse(await invoker.invoke(handler, event, name))
        except FunctionFailed:
            # Lambda answers 200 with the error in the payload and the X-Amz-Function-Error header.
            return JSONResponse(
                {"errorMessage": "The function failed", "errorType": "FunctionError"},
                headers={"X-Amz-Function-Error": "Unhandled"},
            )

    async def run(handler: Handler, event: Any, name: str) -> None:
        # Logged by the invoker; an asynchronous invocation has nobody to answer.
        with contextlib.suppress(FunctionFailed):
            await invoker.invoke(handler, event, name)

    return [Route("/2015-03-31/functions/{function_name}/invocations", invoke, methods=["POST"])]
