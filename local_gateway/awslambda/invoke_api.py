"""Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`), for the functions of template.yaml.

Locally, a function that invokes another (the publisher handing fan-out slices to workers) reaches the gateway
through boto3's Lambda client, the same call it makes in AWS; the function name is its logical id. As in AWS,
a call must be SigV4-signed with the functions' credentials: nobody else may run a function with an event of
their making.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_gateway.awslambda.invoker import FunctionFailed
from local_gateway.awslambda.outbox import run_collecting
from local_gateway.bodies import MAX_BODY_BYTES, BodyIncomplete, BodyTooLarge, bounded_body
from local_gateway.nesting import too_deep
from local_gateway.signatures import SignatureVerifier

if TYPE_CHECKING:
    from local_gateway.awslambda.invoker import FunctionInvoker, Handler

logger = logging.getLogger(__name__)


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"Type": "User", "message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type}
    )


RUN_COLLECTING = (run_collecting.__name__, run_collecting.__code__.co_filename)


def failure_payload(failed: FunctionFailed, timeout_seconds: float) -> dict[str, Any]:
    """What Lambda answers for a function that raised (its exception, as the Python runtime reports it) or timed
    out."""
    cause = failed.__cause__
    if cause is None:
        return {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout_seconds:.2f} seconds"}
    frames = traceback.extract_tb(cause.__traceback__)
    # The function's own frames, after the gateway's (as the runtime leaves its bootstrap out); all of them when
    # the call itself failed (a handler that takes other arguments).
    gateway = [i for i, frame in enumerate(frames) if (frame.name, frame.filename) == RUN_COLLECTING]
    own = frames[gateway[-1] + 1 :] if gateway else frames
    return {
        "errorMessage": str(cause),
        "errorType": type(cause).__name__,
        "stackTrace": traceback.format_list(own or frames),
    }


def lambda_routes(
    functions: dict[str, Handler], invoker: FunctionInvoker, verifier: SignatureVerifier, timeouts: dict[str, float]
) -> list[Route]:
    """`timeouts`: each function's own Timeout (Lambda's, not API Gateway's 29 s cap on integrations)."""
    background: set[asyncio.Task[None]] = set()

    async def invoke(request: Request) -> Response:
        try:
            body = await bounded_body(request)
        except BodyTooLarge:
            message = f"Request must be smaller than {MAX_BODY_BYTES} bytes for the InvokeFunction operation"
            return _error(413, "RequestTooLargeException", message)
        except BodyIncomplete:  # the client has gone: this answer reaches nobody
            return _error(408, "RequestTimeoutException", "The body did not arrive in time")
        refusal = verifier.check(request, body, "lambda")
        if refusal is not None:
            logger.warning("Lambda Invoke refused: %s", refusal.message)
            kind = "UnrecognizedClientException" if refusal.kind == "unknown" else "InvalidSignatureException"
            return _error(403, kind, refusal.message)
        name = request.path_params["function_name"]
        handler = functions.get(name)
        if handler is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        try:
            if too_deep(body):
                raise ValueError("nested past the parser's depth")
            event = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
        if request.headers.get("x-amz-invocation-type") == "Event":
            task = asyncio.create_task(run(handler, event, name))
            background.add(task)
            task.add_done_callback(background.discard)
            return Response(status_code=202)
        try:
            return JSONResponse(await invoker.invoke(handler, event, name, timeout_seconds=timeouts[name]))
        except FunctionFailed as failed:
            # Lambda answers 200 with the error in the payload and the X-Amz-Function-Error header.
            payload = failure_payload(failed, timeouts[name])
            return JSONResponse(payload, headers={"X-Amz-Function-Error": "Unhandled"})

    async def run(handler: Handler, event: Any, name: str) -> None:
        # Logged by the invoker; an asynchronous invocation has nobody to answer.
        with contextlib.suppress(FunctionFailed):
            await invoker.invoke(handler, event, name, timeout_seconds=timeouts[name])

    return [Route("/2015-03-31/functions/{function_name}/invocations", invoke, methods=["POST"])]
