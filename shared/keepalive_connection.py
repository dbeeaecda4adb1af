"""One keep-alive HTTP/1.1 client connection as an asyncio protocol: the fan-out engine's wire."""

from __future__ import annotations

from typing import Any


class Dropped(ConnectionError):
    """The connection closed before a whole response arrived."""


class KeepAliveConnection:
    """One keep-alive HTTP/1.1 connection with at most one request in flight (an asyncio protocol).

    It parses only what a @connections answer needs: the status line, Content-Length, chunked bodies,
    HTTP/1.0 and `Connection: close`. The body is read and dropped; the status decides everything.
    """

    def __init__(self, loop: Any, live: set[KeepAliveConnection]) -> None:
        self.loop = loop
        self.live = live  # the poster's open connections, which the read-timeout watchdog walks
        self._status_at_eof: int | None = None
        self.transport: Any = None
        self.buffer = bytearray()
        self.waiter: Any = None
        self.deadline = 0.0
        self.open = False
        self.reused = False
        self.reusable = False
        self.received = False

    # -- asyncio.Protocol (duck-typed: asyncio is imported only when a poster starts its loop) --
    def connection_made(self, transport: Any) -> None:
        self.transport, self.open = transport, True
        self.live.add(self)

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            self.transport.abort()  # bytes nobody asked for: this connection can no longer be trusted
            return
        self._complete()

    def eof_received(self) -> bool:
        self._finish_at_eof()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.live.discard(self)
        self._finish_at_eof()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(Dropped(str(exc) if exc else "connection closed before the response"))

    def pause_writing(self) -> None:
        pass  # one small request per connection at a time: the transport's buffer is the only queue

    def resume_writing(self) -> None:
        pass

    # -- one request, one response --
    def send(self, request: bytes, timeout: float) -> Any:
        self.waiter = self.loop.create_future()
        self.deadline = self.loop.time() + timeout
        self.received = self.reusable = False
        self.transport.write(request)
        return self.waiter

    def _complete(self) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            self.transport.abort()
            return
        if 100 <= status < 200:  # an interim answer: drop it and wait for the real one
            del buffer[: end + 4]
            return self._complete()
        length: int | None = None
        chunked = False
        close = version == "HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = value.endswith("chunked")
            elif name == "connection":
                close = "close" in value or (close and "keep-alive" not in value)
        start = end + 4
        if status in (204, 304):
            length = 0
        if chunked:
            consumed = chunked_end(buffer, start)
            if consumed < 0:
                return
        elif length is not None:
            consumed = start + length
            if len(buffer) < consumed:
                return
        else:
            self._status_at_eof = status  # no length: the body runs to the end of the connection
            return
        del buffer[:consumed]
        self.reusable = not close and not buffer
        self.waiter.set_result(status)

    def _finish_at_eof(self) -> None:
        status = self._status_at_eof
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)
        self._status_at_eof = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def chunked_end(buffer: bytearray, position: int) -> int:
    """Where a complete chunked body starting at position ends, or -1 while it is incomplete."""
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:
            trailers_end = buffer.find(b"\r\n\r\n", line_end)
            if buffer[position : position + 2] == b"\r\n":
                return position + 2
            return -1 if trailers_end < 0 else trailers_end + 4
        position += size + 2
        if len(buffer) < position:
            return -1
