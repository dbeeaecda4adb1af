"""Which web pages may open a connection to the gateway, on either endpoint (the handshake's `Origin`).

By default: pages served by this machine (`http(s)://localhost`, `127.0.0.1` or `[::1]`, any port: a dev
server on :3000 or :5173 is already local code) and the gateway's own origin. A page elsewhere on the web
is refused, so with auth off it cannot join dashboards and read their updates in the developer's browser.
CORS_ALLOWED_ORIGINS adds origins; `*` allows every origin. A client that is not a browser sends no `Origin`
and is let in. (API Gateway checks no `Origin`: there auth keeps foreign pages out.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def page_scheme(scheme: str) -> str:
    """The scheme of the pages a request of this scheme serves: https behind TLS (https, wss), else http."""
    return "https" if scheme in ("https", "wss") else "http"


def origin_check(configured: str | list[str]) -> Callable[[str, str], bool] | None:
    """Whether a page's `Origin` may connect, given the gateway's own origin; None when every origin may."""
    if configured == "*" or "*" in configured:
        return None
    extra = {origin.rstrip("/") for origin in configured}

    def allowed(origin: str, own: str) -> bool:
        try:
            parts = urlsplit(origin)
            is_local = parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
            parts.port  # noqa: B018 (raises ValueError for a port that is not one)
        except ValueError:
            return False
        return is_local or origin == own or origin in extra

    return allowed


def origin_policy(configured: str | list[str]) -> str | Callable[[str, dict[str, Any]], bool]:
    """What python-socketio's `cors_allowed_origins` takes: "*" or a check of each Origin."""
    check = origin_check(configured)
    if check is None:
        return "*"
    return lambda origin, environ: check(
        origin, own_origin(environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", ""))
    )


def own_origin(scheme: str, host: str) -> str:
    """The origin of a page the gateway itself served, from its request's scheme (HTTP or WebSocket) and Host."""
    return f"{page_scheme(scheme)}://{host}"
