"""How uvicorn serves the gateway: the one configuration `python -m local_gateway` and the tests' gateways use.

Proxy headers: uvicorn believes X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1 by default, so any local
process could name its own sourceIp (and escape the per-address cap). Only TRUSTED_PROXIES are believed; none
by default, and then the headers are not read at all.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.types import ASGIApp

from local_gateway.settings import GatewaySettings


def server_config(app: ASGIApp, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "log_level": "info",
        "access_log": False,
        "log_config": None,  # uvicorn's lines go through the root handler and its filters (logs.py)
        "server_header": False,  # what serves the gateway is nobody else's business
        "timeout_graceful_shutdown": 5,  # Ctrl-C ends within seconds whatever clients do
    }
    return uvicorn.Config(app, **{**options, **overrides})
