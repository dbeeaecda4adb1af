"""The handlers' poster inside the gateway: frames go straight to the sockets, no HTTP call to itself.

`LOCAL_POSTER=inprocess` (the gateway's default) gives the handlers this poster; `LOCAL_POSTER=http` leaves them
the poster they use in AWS (`shared.services.management_api_poster`: the SignedPoster fan-out engine, SigV4 over
keep-alive HTTP), posting to the gateway's own `/@connections` in plain HTTP. Both answer
an unknown connection with ConnectionGone, as API Gateway's 410 does.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shared.codec import decode_server_frame
from shared.errors import ConnectionGone

if TYPE_CHECKING:
    from local_gateway.app import Gateway

INPROCESS = "inprocess"
EMIT_TIMEOUT_SECONDS = 10.0


Emit = tuple[str, str, Any]  # (sid, event, data)
_outbox = threading.local()


def run_collecting(handler: Callable[..., Any], *args: Any) -> tuple[Any, list[Emit]]:
    """Run a handler in this worker thread, collecting its single posts for the gateway to emit on return.

    The gateway emits them on the event loop before it acknowledges the event, so a push still precedes
    its ack, and the handler's thread never waits for the loop.
    """
    _outbox.emits = emits = []
    try:
        return handler(*args), emits
    finally:
        _outbox.emits = None


class InProcessPoster:
    """Frames straight to the sockets: collected for the gateway inside an invocation, else emitted at once."""

    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.loop = loop

    def post(self, connection_id: str, frame: bytes) -> None:
        info = self.gateway.connections.get(connection_id)
        if info is None:
            raise ConnectionGone(connection_id)
        event, data = decode_server_frame(frame)
        emits = getattr(_outbox, "emits", None)
        if emits is not None:
            emits.append((info.sid, event, data))
            return
        self._run(self.gateway.sio.emit(event, data, to=info.sid))

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        """One emit to every live connection (python-socketio encodes the packet once); return the gone ones."""
        sids, gone = [], []
        for connection_id in connection_ids:
            info = self.gateway.connections.get(connection_id)
            if info is None:
                gone.append(connection_id)
            else:
                sids.append(info.sid)
        if sids:
            event, data = decode_server_frame(frame)
            self._run(self.gateway.sio.emit(event, data, to=sids))
        return gone

    def _run(self, emit: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:  # called on the loop itself: it cannot wait for itself
            self.loop.create_task(emit)
            return
        asyncio.run_coroutine_threadsafe(emit, self.loop).result(timeout=EMIT_TIMEOUT_SECONDS)
