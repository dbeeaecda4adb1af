"""uvicorn's HTTP protocol with the gateway's bounds on what a client may hold: a deadline for each request and
a bound on open connections.

uvicorn times out nothing before a request is complete: a socket that never sends a byte, or sends a head or a
body one byte at a time, stays open (2,000 idle sockets and a slow body were all still open after 75 s), each a
file. Its `limit_concurrency` answers 503 only once a request's head is complete, and never to an upgrade. So,
per connection, from its first byte (or from its opening, when idle) the whole request (head and body) must
arrive within REQUEST_TIMEOUT_SECONDS, else the connection is closed (with a 408 when a request had begun); a
head (its target and headers) of more than MAX_HEAD_BYTES is answered 431 (uvicorn's h11 protocol bounds a head,
its httptools one, which it prefers, buffers any head whole); and a connection beyond MAX_CONNECTIONS open at
once is closed as soon as it is accepted. At shutdown a request still
arriving is closed at once: nobody will answer it, and uvicorn would wait for its app (which waits for the rest
of the body) until its graceful timeout.

uvicorn takes a protocol class in its `http` setting; this one is a subclass of the httptools protocol
uvicorn picks by itself (httptools is pinned in requirements-dev.txt, with uvicorn).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger("local_gateway")

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024  # the target and the headers of one request: room for a browser's cookies
WARN_EVERY_SECONDS = 60.0  # a flood beyond the bound: one line a minute, not one a connection


class _Bounds:
    """What every connection of one server shares: its settings, and when a refusal was last told."""

    def __init__(self, request_timeout: float, max_connections: int) -> None:
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.warned_at = -WARN_EVERY_SECONDS

    def refused(self) -> None:
        now = time.monotonic()
        if now - self.warned_at >= WARN_EVERY_SECONDS:
            self.warned_at = now
            logger.warning("connection refused: %d open, the most MAX_CONNECTIONS allows", self.max_connections)


class HeadTooLarge(Exception):
    """Raised from the parser's callback: httptools stops there and uvicorn answers (see send_400_response)."""


class BoundedHttpProtocol(HttpToolsProtocol):
    bounds: _Bounds  # set on each subclass protocol_class() makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._request_begun = False
        self._head_bytes = 0
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.bounds.max_connections:
            self.bounds.refused()
            transport.close()  # before it costs anything but its accept
            return
        self._arm()  # a socket that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        self._head_bytes = 0
        if self._deadline is None:  # the next request on a kept-alive connection: its clock starts now
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # as sent: with its ": " and its line's end
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        self._disarm()
        self.transport.write(HEAD_TOO_LARGE)
        self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._request_begun = False
        self._disarm()  # the whole request is in: how long the answer takes is the gateway's business

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the head is in; the WebSocket protocol owns the connection from here
        super().handle_websocket_upgrade()

    def shutdown(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete and self.cycle.more_body:
            self._disarm()
            self.transport.close()  # its app hears a disconnect and ends: nothing is left to wait for
            return
        super().shutdown()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.bounds.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._request_begun and (self.cycle is None or not self.cycle.response_started):
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()  # a running request's app hears a disconnect (bodies.py: BodyIncomplete)


def protocol_class(request_timeout: float, max_connections: int) -> type[BoundedHttpProtocol]:
    """The protocol for one server's settings (uvicorn builds each connection's from the class alone)."""
    return type("GatewayHttpProtocol", (BoundedHttpProtocol,), {"bounds": _Bounds(request_timeout, max_connections)})
