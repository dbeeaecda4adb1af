"""What one frame to many `/socket.io/` connections costs the event loop: the gateway's group send against
python-socketio's own room emit (what bench/baseline.py pushes with), on the same sockets.

N python-engineio sockets, each with a writer that takes its queued packets as the websocket transport's does
(`AsyncSocket.poll`) and spends a socket write's CPU on each; the time until the last one has written. Three ways:
the room emit, on the loop; the gateway's group send (`SocketIOEndpoint.send_to_group`), called as the publisher
calls it, from a thread that then does `FANOUT_THREAD_WORK_MS` of work of its own (the snapshot's save); and one
send per connection, as every post was delivered before the group send. Prints one JSON line: medians in ms.

    FANOUT_SOCKETS=1000 FANOUT_ROUNDS=25 FANOUT_THREAD_WORK_MS=1 python -m bench.fanout_loop
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable

import socketio
from engineio.async_socket import AsyncSocket

from local_gateway.apigateway.socketio_connection import SocketIOEndpoint
from shared.codec import encode_server_frame
from shared.contract import LIVE_METRICS, METRIC_NAMES

SOCKETS = int(os.environ.get("FANOUT_SOCKETS", "1000"))
ROUNDS = int(os.environ.get("FANOUT_ROUNDS", "25"))
THREAD_WORK_MS = float(os.environ.get("FANOUT_THREAD_WORK_MS", "1"))
WRITE_MS = 0.005  # a frame's write to its socket, roughly (uvicorn's send)


def busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        json.loads(json.dumps({"spin": list(range(50))}))


class Sockets:
    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server
        self.written = 0
        self.all_written = asyncio.Event()
        self.writers: list[asyncio.Task[None]] = []

    async def open(self, count: int) -> list[str]:
        sids = []
        for i in range(count):
            socket = AsyncSocket(self.server.eio, f"eio{i}")
            socket.connected = True
            self.server.eio.sockets[socket.sid] = socket
            sid = await self.server.manager.connect(socket.sid, "/")
            await self.server.enter_room(sid, LIVE_METRICS)
            sids.append(sid)
            self.writers.append(asyncio.create_task(self._write(socket)))
        return sids

    async def _write(self, socket: AsyncSocket) -> None:
        while True:
            for packet in await socket.poll():
                packet.encode()
                busy(WRITE_MS)
                self.written += 1
                if self.written == SOCKETS:
                    self.all_written.set()

    async def timed(self, send: Callable[[], Awaitable[None]]) -> float:
        self.written = 0
        self.all_written.clear()
        start = time.perf_counter()
        await send()
        await self.all_written.wait()
        return (time.perf_counter() - start) * 1000


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = socketio.AsyncServer(async_mode="asgi")
    sockets = Sockets(server)
    members = [SocketIOEndpoint(server, sid) for sid in await sockets.open(SOCKETS)]
    data = [{"name": name, "value": 12, "timestamp": "2026-12-07T00:00:00.000Z"} for name in METRIC_NAMES]
    frame = encode_server_frame(LIVE_METRICS, data)

    async def room_emit() -> None:
        await server.emit(LIVE_METRICS, data, to=LIVE_METRICS)

    def publisher() -> None:
        asyncio.run_coroutine_threadsafe(members[0].send_to_group(list(members), frame), loop).result()
        busy(THREAD_WORK_MS)

    async def group_from_a_thread() -> None:
        threading.Thread(target=publisher).start()

    async def one_send_each() -> None:
        for member in members:
            await member.send(frame)

    ways = {"room emit": room_emit, "group send from a thread": group_from_a_thread, "one send each": one_send_each}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, send in ways.items():
            times[name].append(await sockets.timed(send))
            await asyncio.sleep(THREAD_WORK_MS / 1000 * 2)  # the thread's work done before the next round
    medians = {name: round(statistics.median(values), 2) for name, values in times.items()}
    base = medians["room emit"]
    print(
        json.dumps(
            {
                "sockets": SOCKETS,
                "median_ms": medians,
                "x_room_emit": {n: round(m / base, 2) for n, m in medians.items()},
            }
        )
    )
    for writer in sockets.writers:
        writer.cancel()
    await asyncio.gather(*sockets.writers, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
