"""The page at `/`: a live view of the API in plain HTML/JS, and socket.io-client's browser bundle, served from
the pinned npm package in local_gateway/page/ (`npm ci` there, run by `make run` and `make test`): no CDN."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

PAGE = Path(__file__).parent / "page"
BUNDLE = PAGE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

# The page's own files, and the bundle; nothing else in that directory is served.
FILES = {
    "page.js": (PAGE / "page.js", "text/javascript; charset=utf-8"),
    "page.css": (PAGE / "page.css", "text/css; charset=utf-8"),
    "socket.io.min.js": (BUNDLE, "text/javascript; charset=utf-8"),
}

# Scripts only from the gateway itself (no inline script, no eval), connections only back to it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: Request) -> Response:
    return FileResponse(PAGE / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def asset(request: Request) -> Response:
    found = FILES.get(request.path_params["name"])
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    path, media_type = found
    if not path.is_file():
        return PlainTextResponse(
            f"{path.name} is missing: run `make run` (or `npm ci` in local_gateway/page)", status_code=503
        )
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


def page_routes() -> list[BaseRoute]:
    return [Route("/", index, methods=["GET"]), Route("/page/{name}", asset, methods=["GET"])]
