"""How uvicorn serves the gateway: the one configuration `python -m local_gateway` and the tests' gateways use.

- Proxy headers: uvicorn believes X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1 by default, so any
  local process could name its own sourceIp (and escape the per-address cap). Only TRUSTED_PROXIES are
  believed; none by default, and then the headers are not read at all.
- Deadlines and the bound on open connections: local_gateway/http_protocol.py; the files they need: below.
- Shutdown within 5 s whatever clients do: a request still being sent is closed at once (http_protocol.py),
  anything else (a long poll, a running function) has GRACEFUL_SHUTDOWN_SECONDS, and the lifespan's own
  shutdown (closing every socket, stopping the embedded DynamoDB) fits in what is left.
- uvicorn's `ASGI callable returned without completing handshake.` (ERROR), which it writes after every
  WebSocket upgrade the gateway refuses with a status (the denial response, whose end uvicorn does not count
  as an answer): that is no error, so that line is DEBUG when the gateway sent a denial.
"""

from __future__ import annotations

import contextvars
import logging
import resource
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_gateway.apigateway.websocket_protocol import WebSocketProtocol
from local_gateway.http_protocol import protocol_class
from local_gateway.settings import GatewaySettings
from shared.contract import MAX_MESSAGE_BYTES

logger = logging.getLogger("local_gateway")

GRACEFUL_SHUTDOWN_SECONDS = 3
# The largest WebSocket message uvicorn buffers for the app (its default: 16 MB a connection). Twice the
# largest message either endpoint takes, so the /{stage} endpoint still answers 128 KB to 256 KB with its own 1009.
MAX_WEBSOCKET_MESSAGE_BYTES = 2 * MAX_MESSAGE_BYTES
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection, once its answer is sent (uvicorn's own timer)
FILES_BEYOND_CONNECTIONS = 512  # DynamoDB's HTTP port, the functions' own HTTP clients, logs, modules
UNCOMPLETED_HANDSHAKE = "ASGI callable returned without completing handshake"
_denied: contextvars.ContextVar[bool] = contextvars.ContextVar("denied", default=False)


def server_config(app: ASGIApp, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    quiet_denials()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol_class(settings.request_timeout_seconds, settings.max_connections),
        "ws": WebSocketProtocol,  # per-message deflate on /{stage} as in API Gateway, not on /socket.io/
        "ws_max_size": MAX_WEBSOCKET_MESSAGE_BYTES,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "log_level": "info",
        "access_log": False,
        "log_config": None,  # uvicorn's lines go through the root handler and its filters (logs.py)
        "server_header": False,  # what serves the gateway is nobody else's business
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    return uvicorn.Config(marking_denials(app), **{**options, **overrides})


def marking_denials(app: ASGIApp) -> ASGIApp:
    """Notes, in the upgrade's own task (uvicorn logs from that task once the app returns), that the app
    answered the upgrade with a status rather than leaving it unanswered."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "websocket.http.response.start":
                _denied.set(True)
            await send(message)

        await app(scope, receive, marked)

    return call


class DenialNotError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and _denied.get() and str(record.msg).startswith(UNCOMPLETED_HANDSHAKE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_denials() -> None:
    """The filter on uvicorn's logger, once per process."""
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(known, DenialNotError) for known in uvicorn_errors.filters):
        uvicorn_errors.addFilter(DenialNotError())


def ensure_file_budget(settings: GatewaySettings) -> None:
    """Raise this process's open-file limit (the soft one, up to the hard one) to what MAX_CONNECTIONS needs;
    say so when it cannot: beyond the limit accept() fails, and nobody gets in, the developer included."""
    needed = settings.max_connections + FILES_BEYOND_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    except (ValueError, OSError):
        raised = soft
    if raised < needed:
        logger.warning(
            "this process may open %d files: fewer than MAX_CONNECTIONS=%d needs (raise `ulimit -n`)",
            raised,
            settings.max_connections,
        )
