"""Engine.IO sessions without a Socket.IO connection: ended after a while, and bounded per client address.

python-socketio keeps an Engine.IO session that never connects to a namespace (or has left it) for as long as
it answers pings, and the per-address cap only counts Socket.IO connections. Socket.IO's own server ends such a
session after its `connectTimeout` (45 s); the gateway does the same, and lets one address hold at most its
cap of them at a time: beyond, the Engine.IO handshake is refused (401, the reason as its JSON body).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import socketio

logger = logging.getLogger("local_gateway")

CONNECT_TIMEOUT_SECONDS = 45.0  # Socket.IO's connectTimeout
TOO_MANY_HANDSHAKES = "Too many connections from this address"


def client_address(environ: dict[str, Any]) -> str:
    return str((environ.get("asgi.scope", {}).get("client") or ("127.0.0.1",))[0])


@dataclass
class _Session:
    address: str
    timer: asyncio.TimerHandle | None = None  # set while the session has no Socket.IO connection


class Handshakes:
    """Wraps Engine.IO's connect and disconnect handlers (the ones python-socketio registered); the front
    reports each Socket.IO connection made (`connected`) and ended (`left`)."""

    def __init__(self, server: socketio.AsyncServer, limit: int, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self.server = server
        self.limit = limit
        self.timeout = timeout
        self._sessions: dict[str, _Session] = {}
        self._waiting: Counter[str] = Counter()  # by address: sessions without a Socket.IO connection
        self._closing: set[asyncio.Task[None]] = set()
        eio = server.eio
        handle_connect = eio.handlers["connect"]
        handle_disconnect = eio.handlers["disconnect"]

        async def on_handshake(eio_sid: str, environ: dict[str, Any]) -> Any:
            address = client_address(environ)
            if self._waiting[address] >= self.limit:
                logger.info("Engine.IO handshake refused: %d sessions without a connection from one address", limit)
                return TOO_MANY_HANDSHAKES  # Engine.IO answers 401 with it
            self._sessions[eio_sid] = _Session(address)
            self._wait(eio_sid)
            return await handle_connect(eio_sid, environ)

        async def on_end(eio_sid: str, *reason: Any) -> None:
            session = self._sessions.pop(eio_sid, None)
            if session is not None and session.timer is not None:
                self._stop_waiting(session)
            await handle_disconnect(eio_sid, *reason)

        eio.on("connect", on_handshake)
        eio.on("disconnect", on_end)

    def waiting(self, address: str) -> int:
        return self._waiting[address]

    def connected(self, eio_sid: str | None) -> None:
        session = self._sessions.get(eio_sid or "")
        if session is not None and session.timer is not None:
            self._stop_waiting(session)

    def left(self, eio_sid: str | None) -> None:
        """The session's Socket.IO connection ended; the session itself may live on (a client may leave the
        namespace and keep the socket): it waits again."""
        if eio_sid in self._sessions and self._sessions[eio_sid].timer is None:
            self._wait(eio_sid)

    def _wait(self, eio_sid: str) -> None:
        session = self._sessions[eio_sid]
        self._waiting[session.address] += 1
        session.timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, eio_sid)

    def _stop_waiting(self, session: _Session) -> None:
        assert session.timer is not None
        session.timer.cancel()
        session.timer = None
        self._waiting[session.address] -= 1
        if self._waiting[session.address] <= 0:
            del self._waiting[session.address]

    def _expire(self, eio_sid: str) -> None:
        session = self._sessions.get(eio_sid)
        if session is not None and session.timer is not None:
            logger.info("Engine.IO session closed: no Socket.IO connection within %g s", self.timeout)
            task = asyncio.get_running_loop().create_task(self.server.eio.disconnect(eio_sid))
            self._closing.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(self._closing.discard)
