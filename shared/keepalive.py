"""The fan-out engine's keep-alive connections to one endpoint: reused most recent first, timed out by one
watch per loop instead of one timer per request (see shared/signed_poster.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.keepalive_connection import Dropped, KeepAliveConnection

if TYPE_CHECKING:
    import ssl

    from shared.sigv4 import SigV4Signer


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections (KeepAliveConnection) to the signer's endpoint, on one asyncio loop."""

    def __init__(
        self,
        loop: Any,
        signer: SigV4Signer,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._loop = loop
        self.signer = signer
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ssl = ssl_context
        self._idle: list[KeepAliveConnection] = []  # LIFO: the most recently used connection is the least likely stale
        self._live: set[KeepAliveConnection] = set()

    def close(self) -> None:
        """Close every connection (on the loop's thread)."""
        for connection in list(self._live):
            connection.close()

    def watch(self) -> None:
        """Abort requests past their read timeout: one timer per loop instead of one per post."""
        now = self._loop.time()
        for connection in list(self._live):
            if connection.waiter is not None and not connection.waiter.done() and connection.deadline < now:
                connection.waiter.set_exception(TimeoutError(f"no answer within {self.read_timeout} s"))
                connection.transport.abort()
        self._loop.call_later(min(1.0, self.read_timeout / 4), self.watch)

    async def send(self, request: bytes) -> int:
        """Send one request and read its status, on an idle connection or a new one."""
        connection = self._idle.pop() if self._idle else None
        while connection is not None and not connection.open:
            connection = self._idle.pop() if self._idle else None
        retried = False
        while True:
            if connection is None:
                connection = await self._connect()
            try:
                status: int = await connection.send(request, self.read_timeout)
            except Dropped:
                connection.close()
                if connection.reused and not connection.received and not retried:
                    # The server had closed the idle connection (its keep-alive timeout, a thawed Lambda):
                    # not an answer, so once more on a new connection without spending an attempt.
                    retried, connection = True, None
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            if connection.reusable and connection.open:
                connection.reused = True
                self._idle.append(connection)
            else:
                connection.close()
            return status

    async def _connect(self) -> KeepAliveConnection:
        import asyncio

        signer, loop = self.signer, self._loop
        connection = KeepAliveConnection(loop, self._live)
        tls = self._tls() if signer.scheme == "https" else None
        await asyncio.wait_for(
            loop.create_connection(
                lambda: connection,
                signer.hostname,
                signer.port,
                ssl=tls,
                server_hostname=signer.hostname if tls else None,
            ),
            self.connect_timeout,
        )
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()  # verifies the certificate and the host name
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl
