"""The baseline running the project's functions inline: the least any server running them could cost.

bench/baseline.py, but a client's connect runs the real `$connect` (a JSON client's, as the gateway's /socket.io/
calls it) and, for a client that keeps offsets (the stock JavaScript client), the real `resume` that begins its
session; `analytics:requestLiveMetrics` runs the real function and a disconnect the real `$disconnect`. Each runs
on the event loop itself: no thread, no Lambda invocation, no Management API (what a function posts is emitted
straight to its client), on the embedded DynamoDB with `make run`'s defaults (the rate limiter on). Subscribing,
the pushes and the dashboards stay the baseline's in-memory code. Its ratio to the baseline is the floor under the
gateway's: what the functions' own work costs before any of the emulation around them.

    PORT=4200 METRICS_INTERVAL_SECONDS=1 python -m bench.functions_inline
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import socketio

from bench.baseline import Baseline, serve
from bench.function_host import embedded_services, event
from handlers import connect, disconnect, request_live_metrics, resume
from local_gateway.apigateway.socketio_endpoint import TRANSPORT_PARAMS
from local_gateway.apigateway.socketio_recovery import RECOVERY_FIELDS, takes_offsets
from shared.codec import decode_server_frame
from shared.contract import REQUEST_LIVE_METRICS, RESUME
from shared.services import reset_services

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class CollectedFrames:
    """The poster the functions get: it keeps what they post, for the server to emit once the function returns."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []

    def post(self, connection_id: str, frame: bytes) -> None:
        self.frames.append((connection_id, frame))

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        self.frames.extend((connection_id, frame) for connection_id in connection_ids)
        return []

    def disconnect(self, connection_id: str) -> None:
        """Never asked: none of the functions run here closes a connection."""

    def is_connected(self, connection_id: str) -> bool:
        return True

    def flush(self) -> None:
        """Nothing held: the server takes the frames when the function returns."""

    def take(self) -> list[tuple[str, bytes]]:
        frames, self.frames = self.frames, []
        return frames


def connect_query(environ: dict[str, Any], auth: Any) -> dict[str, str]:
    """The `$connect` query string the gateway's /socket.io/ builds: the client's own parameters and the strings of its
    `auth`, without Socket.IO's parameters or its recovery fields."""
    query = [(k, v) for k, v in parse_qsl(environ.get("QUERY_STRING", "")) if k not in TRANSPORT_PARAMS]
    if isinstance(auth, dict):
        query += [(k, v) for k, v in auth.items() if isinstance(v, str) and k not in RECOVERY_FIELDS | TRANSPORT_PARAMS]
    return dict(query)


# A subclass, not a wrapper: Baseline binds its Socket.IO handlers and its command table to its own methods when it is
# built, so overriding the three that run functions leaves the rest (rooms, pushes, the snapshot) the baseline's code
# unchanged; a wrapper would have to rebind the baseline's server handlers and commands from outside.
class FunctionsInline(Baseline):
    def __init__(self, interval: float, posted: CollectedFrames) -> None:
        super().__init__(interval)
        self.posted = posted

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # The Socket.IO sid is the connection id: one each, as the gateway's own ids are.
        await self.run(connect.handler, event("connect", sid, query=connect_query(environ, auth)))
        if takes_offsets(environ.get("QUERY_STRING", "")):
            await self.run(resume.handler, event("message", sid, RESUME, {}))
        await super().connect(sid, environ, auth)

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        await super().disconnect(sid, reason)
        await self.run(disconnect.handler, event("disconnect", sid), refuses=False)

    async def request(self, sid: str, *args: Any) -> None:
        # A refusal (the rate limiter's) is the function's answer to the client: it posted analytics:error.
        await self.run(request_live_metrics.handler, event("message", sid, REQUEST_LIVE_METRICS), refuses=False)

    async def run(self, handler: Handler, built_event: dict[str, Any], refuses: bool = True) -> None:
        """Run a function here, on the event loop (no thread: that is the point), then emit what it posted as the
        gateway emits a frame. With `refuses`, an answer other than 200 refuses the connection: the gateway only
        logs a failed `resume`, but here it would go unseen and make the floor cheaper than the functions are."""
        answer = handler(built_event, None)
        for connection_id, frame in self.posted.take():
            # The frame's offset (a dashboard update's) is left out: none of the functions run here posts one.
            posted = decode_server_frame(frame)
            await self.sio.emit(posted.event, posted.data, to=connection_id)
        if refuses and answer.get("statusCode") != 200:
            raise socketio.exceptions.ConnectionRefusedError(answer.get("body") or "Forbidden")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    posted = CollectedFrames()
    reset_services(embedded_services(posted))  # the functions' collaborators, as the gateway installs its own
    serve(FunctionsInline(float(os.environ.get("METRICS_INTERVAL_SECONDS", "1")), posted).app)


if __name__ == "__main__":
    main()
