"""Engine.IO sessions without a Socket.IO connection: ended after a while, and the never-connected ones bounded
per client address.

python-socketio keeps an Engine.IO session that never connects to a namespace (or has left it) for as long as
it answers pings, and the per-address cap only counts Socket.IO connections. Socket.IO's own server ends such a
session after its `connectTimeout` (45 s); the gateway does the same. And one address may hold at most `limit`
sessions that have not connected yet: beyond, the Engine.IO handshake is refused (401, the reason as its JSON
body). A session that has left its connection is not counted there: after a load, clients that have gone leave
their sessions behind for a moment, and a new client must not be refused for them. This machine's own addresses
are counted but never refused, as by the per-address cap (registry.AddressCap): a local tool must not lock the
developer out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import socketio

from local_gateway.apigateway.registry import TOO_MANY_CONNECTIONS, client_address, is_loopback_address

logger = logging.getLogger("local_gateway")

CLOSE_WAIT_SECONDS = 1.0  # Engine.IO's close waits for its last packet to be taken: an abandoned poll never is


@dataclass
class _Session:
    address: str
    timer: asyncio.TimerHandle | None = None  # set while the session has no Socket.IO connection
    new: bool = True  # has never had one: counted against the address's cap


class Handshakes:
    """Wraps Engine.IO's connect and disconnect handlers (the ones python-socketio registered); the endpoint
    reports each Socket.IO connection made (`connected`) and ended (`left`)."""

    def __init__(self, server: socketio.AsyncServer, limit: int, timeout: float) -> None:
        self.server = server
        self.limit = limit
        self.timeout = timeout
        self.sessions: dict[str, _Session] = {}  # the open Engine.IO sessions, by sid
        self.waiting: Counter[str] = Counter()  # by address: sessions that have never had a Socket.IO connection
        self._closing: set[asyncio.Task[None]] = set()
        eio = server.eio
        handle_connect = eio.handlers["connect"]
        handle_disconnect = eio.handlers["disconnect"]

        async def on_handshake(eio_sid: str, environ: dict[str, Any]) -> Any:
            address = client_address(environ.get("asgi.scope", {}))
            if self.waiting[address] >= self.limit and not is_loopback_address(address):
                logger.info("Engine.IO handshake refused: %d sessions not yet connected from one address", limit)
                return TOO_MANY_CONNECTIONS  # Engine.IO answers 401 with it
            self.sessions[eio_sid] = _Session(address)
            self.waiting[address] += 1
            self._start_timer(self.sessions[eio_sid], eio_sid)
            try:
                accepted = await handle_connect(eio_sid, environ)
            except BaseException:
                self._forget(eio_sid)
                raise
            if accepted is not None and accepted is not True:  # refused: Engine.IO tells no end of it
                self._forget(eio_sid)
            return accepted

        async def on_end(eio_sid: str, *reason: Any) -> None:
            self._forget(eio_sid)
            await handle_disconnect(eio_sid, *reason)

        eio.on("connect", on_handshake)
        eio.on("disconnect", on_end)

    def alive(self, eio_sid: str | None) -> bool:
        """Whether the session is still open (it may end while its `$connect` runs)."""
        return eio_sid in self.sessions

    def connected(self, eio_sid: str | None) -> None:
        session = self.sessions.get(eio_sid or "")
        if session is not None:
            self._stop(session)

    def left(self, eio_sid: str | None) -> None:
        """The session's Socket.IO connection ended; the session itself may live on (a client may leave the
        namespace and keep the socket): its clock starts again."""
        session = self.sessions.get(eio_sid or "")
        if session is not None and session.timer is None:
            self._start_timer(session, eio_sid or "")

    async def close(self) -> None:
        """At shutdown: no timer left to fire, no close left waiting."""
        for eio_sid in list(self.sessions):
            self._forget(eio_sid)
        closing = list(self._closing)
        for task in closing:
            task.cancel()
        if closing:  # bounded: Engine.IO's handlers swallow a cancellation, and a close may then wait on
            await asyncio.wait(closing, timeout=CLOSE_WAIT_SECONDS)  # a queue nobody reads

    def _start_timer(self, session: _Session, eio_sid: str) -> None:
        session.timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, eio_sid)

    def _stop(self, session: _Session) -> None:
        """Counted out of the not-yet-connected, its clock stopped."""
        self._uncount(session)
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None

    def _uncount(self, session: _Session) -> None:
        if session.new:
            session.new = False
            self.waiting[session.address] -= 1
            if self.waiting[session.address] <= 0:
                del self.waiting[session.address]

    def _forget(self, eio_sid: str) -> None:
        session = self.sessions.pop(eio_sid, None)
        if session is not None:
            self._stop(session)

    def _expire(self, eio_sid: str) -> None:
        if eio_sid not in self.sessions:
            return
        logger.info("Engine.IO session closed: no Socket.IO connection within %g s", self.timeout)
        self._forget(eio_sid)  # counted out here, whether or not Engine.IO still tells of the end
        task = asyncio.get_running_loop().create_task(self._close(eio_sid))
        self._closing.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._closing.discard)

    async def _close(self, eio_sid: str) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await self.server.eio.disconnect(eio_sid)
