"""Which web pages may open a Socket.IO connection to the gateway (the handshake's `Origin`).

By default: pages served by this machine (`http(s)://localhost`, `127.0.0.1` or `[::1]`, any port: a dev
server on :3000 or :5173 is already local code) and the gateway's own origin. A page elsewhere on the web
is refused, so with auth off it cannot join dashboards and read their updates in the developer's browser.
CORS_ALLOWED_ORIGINS adds origins; `*` allows every origin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def origin_policy(configured: str | list[str]) -> str | Callable[[str, dict[str, Any]], bool]:
    """What python-socketio's `cors_allowed_origins` takes: "*" or a check of each Origin."""
    if configured == "*" or "*" in configured:
        return "*"
    extra = {origin.rstrip("/") for origin in configured}

    def allowed(origin: str, environ: dict[str, Any]) -> bool:
        try:
            parts = urlsplit(origin)
            is_local = parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
            parts.port  # noqa: B018 (raises ValueError for a port that is not one)
        except ValueError:
            return False
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return is_local or origin == own or origin in extra

    return allowed
