"""The benchmark's baseline: the same wire contract in memory, python-socketio alone.

Rooms live in python-socketio's own manager, a timer pushes the snapshot, nothing is stored anywhere.
It is what the project would cost with no Lambda model at all, served by the same uvicorn settings
as the gateway, so the ratio between the two is the price of the serverless design.

    PORT=4200 METRICS_INTERVAL_SECONDS=1 python -m bench.baseline
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio
from starlette.applications import Starlette

from shared.contract import MAX_MESSAGE_BYTES, METRIC_NAMES
from shared.metrics import iso_timestamp
from shared.system_metrics import HOST_READER
from shared.validation import DASHBOARD_ID

logger = logging.getLogger("bench.baseline")

LIVE_ROOM = "analytics:liveMetrics"
MAX_ROOMS = 20


class Baseline:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.users: dict[str, str] = {}  # sid -> user (anonymous: the sid itself)
        self.rooms: dict[str, set[str]] = {}  # sid -> dashboards
        self.sio = socketio.AsyncServer(
            async_mode="asgi", cors_allowed_origins="*", max_http_buffer_size=MAX_MESSAGE_BYTES
        )
        self.sio.on("connect", self.connect)
        self.sio.on("disconnect", self.disconnect)
        self.sio.on("*", self.event)
        self.commands = {
            "analytics:subscribeLiveMetrics": self.subscribe,
            "analytics:unsubscribeLiveMetrics": self.unsubscribe,
            "analytics:requestLiveMetrics": self.request,
            "analytics:joinDashboard": self.join,
            "analytics:leaveDashboard": self.leave,
        }
        self.app = socketio.ASGIApp(self.sio, other_asgi_app=Starlette(lifespan=self.lifespan))

    def snapshot(self) -> list[dict[str, Any]]:
        timestamp = iso_timestamp(time.time())
        subscribers = len(self.sio.manager.rooms.get("/", {}).get(LIVE_ROOM, {}) or {})
        dashboards = {room for rooms in self.rooms.values() for room in rooms}
        host = HOST_READER.percents()
        values = (len(set(self.users.values())), subscribers, len(dashboards), *(host[n] for n in METRIC_NAMES[3:]))
        return [{"name": n, "value": v, "timestamp": timestamp} for n, v in zip(METRIC_NAMES, values, strict=True)]

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        user = auth.get("userId") if isinstance(auth, dict) else None
        self.users[sid] = f"user:{user}" if isinstance(user, str) else f"conn:{sid}"
        self.rooms[sid] = set()

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        self.users.pop(sid, None)
        self.rooms.pop(sid, None)

    async def event(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        command = self.commands.get(event)
        try:
            if command is None:
                raise ValueError(f"Unknown event: {event[:128]}")
            await command(sid, *args)
        except ValueError as error:
            await self.sio.emit("analytics:error", {"message": str(error), "event": event[:128]}, to=sid)
            return {"ok": False, "error": str(error)}
        return {"ok": True}

    async def subscribe(self, sid: str, *args: Any) -> None:
        if LIVE_ROOM not in self.sio.rooms(sid):
            await self.sio.enter_room(sid, LIVE_ROOM)
            await self.sio.emit("analytics:liveMetrics", self.snapshot(), to=sid)

    async def unsubscribe(self, sid: str, *args: Any) -> None:
        await self.sio.leave_room(sid, LIVE_ROOM)

    async def request(self, sid: str, *args: Any) -> None:
        await self.sio.emit("analytics:liveMetrics", self.snapshot(), to=sid)

    async def join(self, sid: str, *args: Any) -> None:
        dashboard = args[0] if args else None
        if not isinstance(dashboard, str) or not DASHBOARD_ID.fullmatch(dashboard):
            raise ValueError("dashboardId must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
        rooms = self.rooms.setdefault(sid, set())
        if dashboard not in rooms and len(rooms) >= MAX_ROOMS:
            raise ValueError(f"A connection may be in at most {MAX_ROOMS} dashboards")
        rooms.add(dashboard)
        await self.sio.enter_room(sid, f"dashboard:{dashboard}")

    async def leave(self, sid: str, *args: Any) -> None:
        dashboard = args[0] if args else None
        if not isinstance(dashboard, str) or not DASHBOARD_ID.fullmatch(dashboard):
            raise ValueError("dashboardId must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
        self.rooms.get(sid, set()).discard(dashboard)
        await self.sio.leave_room(sid, f"dashboard:{dashboard}")

    async def push_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + self.interval, loop.time())
            if self.sio.manager.rooms.get("/", {}).get(LIVE_ROOM):
                await self.sio.emit("analytics:liveMetrics", self.snapshot(), to=LIVE_ROOM)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(self.push_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def serve(app: Any) -> None:
    """Serve `app` on PORT with the gateway's WebSocket implementation and, as on its /socket.io/, no per-message
    deflate: alike, or the ratio would measure compression (local_gateway/apigateway/websocket_protocol.py)."""
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "4200")),
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    serve(Baseline(float(os.environ.get("METRICS_INTERVAL_SECONDS", "1"))).app)


if __name__ == "__main__":
    main()
