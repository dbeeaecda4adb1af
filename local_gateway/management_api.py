"""The API Gateway Management API (`/@connections/{id}`), served by the gateway on its own port."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_gateway.apigw import ConnectionInfo
from shared.codec import MAX_MESSAGE_BYTES, decode_server_frame
from shared.metrics import iso_timestamp

if TYPE_CHECKING:
    from local_gateway.app import Gateway

logger = logging.getLogger(__name__)


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    # botocore reads the error code from this header, as it does for the real service.
    return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type})


def management_routes(gateway: Gateway) -> list[Route]:
    def connection(request: Request) -> ConnectionInfo | None:
        return gateway.connections.get(request.path_params["connection_id"])

    async def post(request: Request) -> Response:
        info = connection(request)
        if info is None:
            return _error(410, "GoneException", "Gone")
        body = await request.body()
        if len(body) > MAX_MESSAGE_BYTES:
            return _error(413, "PayloadTooLargeException", "Payload too large")
        try:
            event, data = decode_server_frame(body)
        except ValueError:
            return _error(400, "BadRequestException", "Data is not a server frame {\"event\", \"data\"}")
        await gateway.sio.emit(event, data, to=info.sid)
        return Response(status_code=200)

    async def get(request: Request) -> Response:
        info = connection(request)
        if info is None:
            return _error(410, "GoneException", "Gone")
        return JSONResponse(
            {
                "connectedAt": iso_timestamp(info.connected_at),
                "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
                "lastActiveAt": iso_timestamp(info.last_active_at),
            }
        )

    async def delete(request: Request) -> Response:
        info = connection(request)
        if info is None:
            return _error(410, "GoneException", "Gone")
        await gateway.sio.disconnect(info.sid)
        return Response(status_code=204)

    routes = []
    for prefix in ("", "/{stage}"):
        path = prefix + "/@connections/{connection_id}"
        routes += [
            Route(path, post, methods=["POST"]),
            Route(path, get, methods=["GET"]),
            Route(path, delete, methods=["DELETE"]),
        ]
    return routes
