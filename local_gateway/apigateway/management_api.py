"""The API Gateway Management API (`/@connections/{id}`), served by the gateway on its own port.

As in AWS, every call must be SigV4-signed (here: with the credentials the gateway gives its functions), so a
web page or a neighbour on the network can neither push frames into a socket, close it, nor probe its id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_gateway.apigateway.registry import Connection, ConnectionRegistry
from local_gateway.bodies import BodyIncomplete, BodyTooLarge, bounded_body
from local_gateway.signatures import SignatureVerifier
from shared.contract import MAX_MESSAGE_BYTES
from shared.metrics import iso_timestamp

logger = logging.getLogger(__name__)


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    # botocore reads the error code from this header, as it does for the real service.
    return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type})


def management_routes(registry: ConnectionRegistry, verifier: SignatureVerifier, stage: str) -> list[Route]:
    """Served at `/{stage}/@connections/{id}`, as API Gateway serves it (another stage: 403), and, for tools on
    this machine, at `/@connections/{id}` too."""

    def connection(request: Request) -> Connection | None:
        return registry.get(request.path_params["connection_id"])

    def signed(handler: Callable[[Request, bytes], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def checked(request: Request) -> Response:
            if request.path_params.get("stage", stage) != stage:
                return _error(403, "ForbiddenException", "Forbidden")
            try:
                body = await bounded_body(request)
            except BodyTooLarge:
                return _error(413, "PayloadTooLargeException", "Payload too large")
            except BodyIncomplete:  # the client has gone: this answer reaches nobody
                return _error(408, "RequestTimeoutException", "The body did not arrive in time")
            refusal = verifier.check(request, body, "execute-api")
            if refusal is not None:
                logger.warning("@connections %s refused: %s", request.method, refusal.message)
                return _error(403, "ForbiddenException", refusal.message)
            return await handler(request, body)

        return checked

    async def post(request: Request, body: bytes) -> Response:
        found = connection(request)
        if found is None:
            return _error(410, "GoneException", "Gone")
        if len(body) > MAX_MESSAGE_BYTES:
            return _error(413, "PayloadTooLargeException", "Payload too large")
        try:
            await found.endpoint.send(body)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth (only signed callers)
            # Only the Socket.IO endpoint has a shape to ask for: it turns {"event", "data"} into an emit.
            return _error(400, "BadRequestException", 'Data is not a server frame {"event", "data"} of a usable event')
        return Response(status_code=200)

    async def get(request: Request, body: bytes) -> Response:
        found = connection(request)
        if found is None:
            return _error(410, "GoneException", "Gone")
        info = found.info
        return JSONResponse(
            {
                "connectedAt": iso_timestamp(info.connected_at),
                "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
                "lastActiveAt": iso_timestamp(info.last_active_at),
            }
        )

    async def delete(request: Request, body: bytes) -> Response:
        found = connection(request)
        if found is None:
            return _error(410, "GoneException", "Gone")
        await found.endpoint.close()
        return Response(status_code=204)

    routes = []
    for prefix in ("", "/{stage}"):
        path = prefix + "/@connections/{connection_id}"
        routes += [
            Route(path, signed(post), methods=["POST"]),
            Route(path, signed(get), methods=["GET"]),
            Route(path, signed(delete), methods=["DELETE"]),
        ]
    return routes
