"""How uvicorn serves the gateway: the one configuration `python -m local_gateway` and the tests' gateways use.

- Proxy headers: uvicorn believes X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1 by default, so any
  local process could name its own sourceIp (and escape the per-address cap). Only TRUSTED_PROXIES are
  believed; none by default, and then the headers are not read at all.
- Deadlines and the bound on open connections: local_gateway/http_protocol.py; the files they need: below.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from local_gateway.http_protocol import protocol_class
from local_gateway.settings import GatewaySettings

logger = logging.getLogger("local_gateway")

KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection, once its answer is sent (uvicorn's own timer)
FILES_BEYOND_CONNECTIONS = 512  # DynamoDB's door, the functions' own HTTP clients, logs, modules


def server_config(app: ASGIApp, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol_class(settings.request_timeout_seconds, settings.max_connections),
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "log_level": "info",
        "access_log": False,
        "log_config": None,  # uvicorn's lines go through the root handler and its filters (logs.py)
        "server_header": False,  # what serves the gateway is nobody else's business
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": 5,  # Ctrl-C ends within seconds whatever clients do
    }
    return uvicorn.Config(app, **{**options, **overrides})


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
