"""The gateway: Socket.IO in, API Gateway events to the handlers, the Management API back out."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import socketio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from local_gateway import apigw
from local_gateway.apigw import ConnectionInfo, LambdaContext
from local_gateway.environment import LocalEnvironment
from local_gateway.inprocess import INPROCESS, InProcessPoster, run_collecting
from local_gateway.lambda_api import lambda_routes
from local_gateway.management_api import management_routes
from local_gateway.template import Template, template
from shared.codec import MAX_MESSAGE_BYTES, encode_client_frame
from shared.config import GatewaySettings
from shared.dashboards import DETAIL_TYPE, SOURCE
from shared.runtime import ERROR_EVENT
from shared.services import services

logger = logging.getLogger("local_gateway")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# Socket.IO's own query parameters, which API Gateway would never see.
TRANSPORT_PARAMS = {"EIO", "transport", "t", "sid", "j", "b64"}
INTERNAL_SERVER_ERROR = "Internal server error"
HANDLER_THREADS = 32


def import_handler(dotted: str) -> Handler:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters ending in '='), safe in a URL path."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


class Gateway:
    def __init__(self, settings: GatewaySettings, source: Template | None = None) -> None:
        source = source or template()
        self.settings = settings
        self.routes = {key: import_handler(path) for key, path in source.routes().items()}
        self.publish_metrics = import_handler(source.handler_for_event("Schedule"))
        self.publish_dashboard_update = import_handler(source.handler_for_event("EventBridgeRule"))
        self.functions = {name: import_handler(source.function_handler(name)) for name in source.functions()}
        self.environment = LocalEnvironment(source, public_url=f"http://127.0.0.1:{settings.port}")
        self.connections: dict[str, ConnectionInfo] = {}
        # Handlers run in threads, as Lambda runs them apart; a plain executor costs less per call than anyio's.
        self.executor = self._new_executor()
        self._by_sid: dict[str, str] = {}
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=settings.cors_allowed_origins,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)
        http = Starlette(
            routes=[
                *management_routes(self),
                *lambda_routes(self),
                Route("/dashboards/{dashboard_id}/updates", self._post_dashboard_update, methods=["POST"]),
                Route("/health", self._health, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=http)

    # -- invoking functions ------------------------------------------------------------------
    async def invoke(self, handler: Handler, event: dict[str, Any], name: str) -> dict[str, Any]:
        """Run a handler off the event loop, as Lambda would; a crash becomes API Gateway's 502."""
        try:
            context = LambdaContext(function_name=name)
            loop = asyncio.get_running_loop()
            result, emits = await loop.run_in_executor(self.executor, run_collecting, handler, event, context)
            for sid, emitted, data in emits:  # the handler's own posts (LOCAL_POSTER=inprocess), before its ack
                await self.sio.emit(emitted, data, to=sid)
        except Exception:
            logger.exception("function for %s raised", name)
            return {"statusCode": 502, "body": INTERNAL_SERVER_ERROR}
        return result if isinstance(result, dict) else {"statusCode": 200, "body": json.dumps(result)}

    # -- Socket.IO ---------------------------------------------------------------------------
    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        query = {k: v for k, v in parse_qsl(environ.get("QUERY_STRING", "")) if k not in TRANSPORT_PARAMS}
        if isinstance(auth, dict):
            # Socket.IO's `auth` travels as query parameters: what a browser can send to API Gateway.
            query.update({k: v for k, v in auth.items() if isinstance(k, str) and isinstance(v, str)})
        info = ConnectionInfo(
            connection_id=new_connection_id(),
            sid=sid,
            source_ip=(environ.get("asgi.scope", {}).get("client") or ("127.0.0.1",))[0],
            user_agent=headers.get("User-Agent", ""),
            domain_name=headers.get("Host", "localhost"),
        )
        result = await self.invoke(self.routes["$connect"], apigw.connect_event(info, headers, query), "$connect")
        if result.get("statusCode") != 200:
            logger.info("connection refused (%s): %s", result.get("statusCode"), result.get("body"))
            raise socketio.exceptions.ConnectionRefusedError(result.get("body") or "Forbidden")
        self.connections[info.connection_id] = info
        self._by_sid[sid] = info.connection_id
        logger.info("connected %s (%d open)", info.connection_id, len(self.connections))

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        connection_id = self._by_sid.pop(sid, None)
        info = self.connections.pop(connection_id, None) if connection_id else None
        if info is None:
            return
        await self.invoke(self.routes["$disconnect"], apigw.disconnect_event(info, str(reason)), "$disconnect")
        logger.info("disconnected %s (%s, %d open)", info.connection_id, reason, len(self.connections))

    async def _on_event(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        info = self.connections.get(self._by_sid.get(sid, ""))
        if info is None:
            return {"ok": False, "error": "Not connected"}
        info.last_active_at = time.time()
        try:
            body = encode_client_frame(event, *args)
        except (TypeError, ValueError):
            message = "Binary or non-JSON arguments are not supported"
            await self.sio.emit(ERROR_EVENT, {"message": message, "event": event[:128]}, to=sid)
            return {"ok": False, "error": message}
        route_key = event if event in self.routes and not event.startswith("$") else "$default"
        result = await self.invoke(self.routes[route_key], apigw.message_event(info, route_key, body), route_key)
        logger.info("%s %s -> %s", info.connection_id, route_key, result.get("statusCode"))
        return await self._ack(sid, event, result)

    async def _ack(self, sid: str, event: str, result: dict[str, Any]) -> dict[str, Any]:
        try:
            ack = json.loads(result.get("body") or "")
        except (TypeError, ValueError):
            ack = None
        if isinstance(ack, dict) and isinstance(ack.get("ok"), bool):
            return ack
        # The function crashed: API Gateway tells the client "Internal server error", and so do we.
        await self.sio.emit(ERROR_EVENT, {"message": INTERNAL_SERVER_ERROR, "event": event[:128]}, to=sid)
        return {"ok": False, "error": INTERNAL_SERVER_ERROR}

    # -- HTTP --------------------------------------------------------------------------------
    async def _post_dashboard_update(self, request: Request) -> JSONResponse:
        try:
            data = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "The body must be JSON"}, status_code=400)
        detail = {"dashboardId": request.path_params["dashboard_id"], "data": data}
        event = apigw.eventbridge_event(SOURCE, DETAIL_TYPE, detail)
        result = await self.invoke(self.publish_dashboard_update, event, "publish_dashboard_update")
        status = result.get("statusCode", 500)
        return JSONResponse(json.loads(result.get("body") or "{}"), status_code=202 if status == 200 else status)

    async def _health(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "connections": len(self.connections),
                "dynamodb": self.environment.describe_dynamodb(),
                "table": os.environ.get("TABLE_NAME"),
            }
        )

    # -- life --------------------------------------------------------------------------------
    async def _publish_forever(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time())
            await self.invoke(self.publish_metrics, apigw.scheduled_event(), "publish_metrics")

    def _install_poster(self) -> None:
        """LOCAL_POSTER=inprocess (default): handlers emit straight to the sockets; http: services' default
        poster factory stays, the SignedPoster AWS uses, posting to the gateway's own /@connections."""
        if self.settings.local_poster != INPROCESS:
            return
        poster = InProcessPoster(self, asyncio.get_running_loop())
        svc = services()
        svc.poster_factory = lambda endpoint: poster

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="handler")

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        config = await run_in_threadpool(self.environment.start)
        self._install_poster()
        publisher = asyncio.create_task(self._publish_forever(config.metrics_interval_seconds))
        logger.info(
            "gateway on %s:%s, table %s on %s, pushing every %ss",
            self.settings.host,
            self.settings.port,
            config.table_name,
            self.environment.describe_dynamodb(),
            config.metrics_interval_seconds,
        )
        try:
            yield
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            for sid in list(self._by_sid):
                await self.sio.disconnect(sid)
            await run_in_threadpool(self.environment.stop)
            # Its threads would outlive the gateway; a gateway started again gets a fresh pool.
            self.executor.shutdown(wait=False)
            self.executor = self._new_executor()
