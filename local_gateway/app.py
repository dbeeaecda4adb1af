"""The gateway: two endpoints (Socket.IO, and API Gateway's own WebSocket) over one connection registry, the
functions of template.yaml behind them, and the Management and Lambda APIs they call back."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route, WebSocketRoute

from local_gateway.apigateway import events
from local_gateway.apigateway.engineio_input import screened_engineio
from local_gateway.apigateway.management_api import management_routes
from local_gateway.apigateway.registry import AddressCap, ConnectionRegistry
from local_gateway.apigateway.socketio_endpoint import SocketIOServer
from local_gateway.apigateway.websocket_endpoint import Limits, StageEndpoint
from local_gateway.awslambda.environment import LocalEnvironment
from local_gateway.awslambda.in_process_poster import InProcessPoster
from local_gateway.awslambda.invoke_api import lambda_routes
from local_gateway.awslambda.invoker import SYSTEM_THREADS, FunctionFailed, FunctionInvoker, Handler
from local_gateway.eventbridge import DETAIL_TYPES, EventRoutes
from local_gateway.health import Health
from local_gateway.hosts import AllowedHosts, checked_hosts
from local_gateway.page import page_routes
from local_gateway.settings import INPROCESS, GatewaySettings
from local_gateway.signatures import SignatureVerifier
from local_gateway.template import Template, function_timeout, route_response_keys, stage_name, template
from shared.clients import management_api_poster
from shared.config import Config
from shared.contract import MAX_MESSAGE_BYTES, UPDATE_SOURCE
from shared.poster import Poster
from shared.services import Services, reset_services

MIN_HS256_SECRET_BYTES = 32
logger = logging.getLogger("local_gateway")
RECONCILE_RUN_SECONDS = 60.0  # the ReconcileFunction's schedule; a pass starts at most every RECONCILE_INTERVAL_SECONDS


def function_credentials() -> tuple[Any, str]:
    """What the functions sign with, and for which region: boto3's chain in this process (the environment
    started), read as shared/clients.py reads it."""
    import boto3

    session = boto3.session.Session()
    return session.get_credentials(), session.region_name or os.environ.get("AWS_REGION") or "us-east-1"


def import_handler(dotted: str) -> Handler:
    module, _, name = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


class Gateway:
    def __init__(
        self, settings: GatewaySettings, source: Template | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        source = source or template()
        self.settings = settings
        self.stage = stage_name(source)
        routes = {key: import_handler(path) for key, path in source.routes().items()}
        self.publish_metrics = import_handler(source.function_handler("PublishMetricsFunction"))
        self.reconcile = import_handler(source.function_handler("ReconcileFunction"))
        # What EventBridge would deliver each event a service publishes to (POST /dashboards/{id}/updates, /metrics).
        rule_functions = {kind: import_handler(source.handler_for_rule(UPDATE_SOURCE, kind)) for kind in DETAIL_TYPES}
        self.functions = {name: import_handler(source.function_handler(name)) for name in source.functions()}
        # Lambda's Invoke API runs each function with its own Timeout, not API Gateway's 29 s integration cap.
        function_timeouts = {name: function_timeout(source, name) for name in self.functions}
        public_url = f"http://127.0.0.1:{settings.port}"
        # The embedded DynamoDB listens on loopback alone: its names are loopback's and ALLOWED_HOSTS'.
        dynamodb_hosts = AllowedHosts.of("127.0.0.1", settings.allowed_hosts)
        self.environment = LocalEnvironment(
            source,
            public_url,
            os.environ if environ is None else environ,
            dynamodb_hosts,
            settings.embedded_dynamodb_fast_path,
        )
        self.registry = ConnectionRegistry()
        timeout = min(function_timeout(source), 29.0)
        self.invoker = FunctionInvoker(self.registry, timeout)  # the clients' events
        # The publisher's lane: its pushes, dashboard updates and the functions' own invocations never queue
        # behind client events.
        self.system_invoker = FunctionInvoker(self.registry, timeout, SYSTEM_THREADS, "system")
        cap = AddressCap(settings.max_connections_per_address)  # both endpoints together
        self.socketio = SocketIOServer(
            self.registry,
            self.invoker,
            routes,
            settings.cors_allowed_origins,
            self.stage,
            settings.event_backlog,
            cap,
            settings.socketio_connect_timeout_seconds,
        )
        limits = Limits(settings.idle_timeout_seconds, settings.max_connection_seconds)
        self.stage_endpoint = StageEndpoint(
            self.registry,
            self.invoker,
            routes,
            route_response_keys(source),
            self.stage,
            limits,
            cap,
            settings.cors_allowed_origins,
        )
        # The credentials the functions sign with, known once the environment has started.
        self.verifier = SignatureVerifier()
        self.event_routes = EventRoutes(rule_functions, self.verifier, self.invoke)
        self.health = Health(self.environment, self.registry)
        http = Starlette(
            routes=[
                *management_routes(self.registry, self.verifier, self.stage),
                *lambda_routes(self.functions, self.system_invoker, self.verifier, function_timeouts),
                *page_routes(),
                *self.event_routes.routes(),
                Route("/health", self.health.answer, methods=["GET"]),
                WebSocketRoute("/{stage}", self.stage_endpoint.serve),
            ],
            lifespan=self._lifespan,
        )
        # Engine.IO's packets screened and its polling POSTs bounded before Engine.IO decodes them (an oversized
        # POST would hang it; an unknown packet type is a traceback).
        endpoints = screened_engineio(socketio.ASGIApp(self.socketio.server, other_asgi_app=http), MAX_MESSAGE_BYTES)
        # Before anything else: a request by a name that is not the gateway's (DNS rebinding) is refused.
        self.allowed_hosts = AllowedHosts.of(settings.host, settings.allowed_hosts)
        self.app = checked_hosts(endpoints, self.allowed_hosts)

    async def invoke(self, handler: Handler, event: dict[str, Any], name: str) -> dict[str, Any]:
        """A function run for the gateway itself (publisher, dashboard updates): a crash becomes a 502."""
        try:
            result = await self.system_invoker.invoke(handler, event, name)
        except FunctionFailed:
            return {"statusCode": 502, "body": json.dumps({"error": "Internal server error"})}
        return result if isinstance(result, dict) else {"statusCode": 200, "body": json.dumps(result)}

    # -- life --------------------------------------------------------------------------------
    async def _run_forever(self, interval: float, handler: Handler, name: str, role: str, work: str) -> None:
        """A scheduled function on its own clock (the publisher's, the reconciler's): one never waits for the
        other. While it fails (DynamoDB down), one line when the failures start and one when it recovers, not a
        traceback every tick."""
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        failing = False
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time())
            try:
                await self.system_invoker.invoke(handler, events.scheduled_event(), name, log_failure=False)
            except FunctionFailed as failure:
                if not failing:
                    failing = True
                    cause = failure.__cause__
                    why = f"{type(cause).__name__}: {cause}" if cause else "timed out"
                    logger.warning("%s failing (%s): no %s until it recovers", role, why, work)
                continue
            if failing:
                failing = False
                logger.warning("%s recovered: %s resume", role, work)

    def _services(self, config: Config) -> Services:
        """What every handler gets: the configuration built here, and the poster LOCAL_POSTER names."""
        factory: Callable[[str], Poster] = management_api_poster  # http: the poster AWS uses, to our /@connections
        if self.settings.local_poster == INPROCESS:
            poster = InProcessPoster(self.registry, asyncio.get_running_loop())
            factory = lambda endpoint: poster  # noqa: E731
        return Services.from_config(config, factory, self.environment.dynamodb)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        config = await run_in_threadpool(self.environment.start)
        self.verifier.credentials, self.verifier.region = await run_in_threadpool(function_credentials)
        # The scheduled functions run under the invoker's one timeout (the Invoke API gives each its own): the
        # reconciler's settle fits in half of it.
        settle = min(config.reconcile_settle_seconds, self.invoker.timeout_seconds / 2)
        config = dataclasses.replace(config, reconcile_settle_seconds=settle)
        svc = self._services(config)
        self.invoker.services = self.system_invoker.services = svc
        reset_services(svc)
        publisher = asyncio.create_task(
            self._run_forever(
                config.metrics_interval_seconds, self.publish_metrics, "publish_metrics", "publisher", "pushes"
            )
        )
        reconciler = asyncio.create_task(
            self._run_forever(RECONCILE_RUN_SECONDS, self.reconcile, "reconcile", "reconciler", "recounts")
        )
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        auth = config.auth
        mode = (
            "auth on (HS256 tokens)"
            if auth.jwt_secret
            else "auth on (RS256 tokens, JWKS)"
            if auth.jwks_url
            else "auth off"
        )
        logger.info(
            "gateway on http://%s:%s/ (%s; Socket.IO at /socket.io/, API Gateway WebSocket at /%s), table %s on %s, "
            "pushing every %ss",
            host,
            self.settings.port,
            mode,
            self.stage,
            config.table_name,
            self.environment.describe_dynamodb(),
            config.metrics_interval_seconds,
        )
        if auth.jwt_secret and len(auth.jwt_secret.encode()) < MIN_HS256_SECRET_BYTES:
            logger.warning(
                "AUTH_JWT_SECRET is %d bytes: RFC 7518 asks for at least %d (256 bits) for HS256; a short one can be"
                " guessed",
                len(auth.jwt_secret.encode()),
                MIN_HS256_SECRET_BYTES,
            )
        try:
            yield
        finally:
            for task in (publisher, reconciler):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.socketio.close_all()
            await self.stage_endpoint.close_all()
            await run_in_threadpool(self.environment.stop)
            self.health.forget_client()
            reset_services(None)
            self.invoker.restart()
            self.system_invoker.restart()
