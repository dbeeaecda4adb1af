"""Socket.IO on the deployed endpoint: from WebSocket open to the client's `connect`, measured on the gateway.

The path is API Gateway's: `$connect` stores the pending connection and invokes the open-packet function
asynchronously; that function posts `0{...}` (retrying 410 while the handshake completes); the client answers
`40`, which `$default` registers and answers `40{"sid"}`: that is the moment socket.io-client fires `connect`.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.servers import gateway

CONNECTIONS = 50


async def _one(url: str) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    async with connect(url) as websocket:  # returns once the upgrade (and so $connect) has completed
        opened = time.perf_counter()
        frame = await websocket.recv()
        assert isinstance(frame, str) and frame.startswith("0{"), frame
        open_packet = time.perf_counter() - opened
        await websocket.send("40")
        answer = await websocket.recv()
        assert isinstance(answer, str) and answer.startswith("40{"), answer
        return open_packet, time.perf_counter() - opened


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f} ms"


def section(interval: float = 1.0) -> list[str]:
    server = gateway(interval).start()  # exactly as `make run` starts it
    try:
        url = f"ws://127.0.0.1:{server.port}/prod?EIO=4&transport=websocket"
        samples = [asyncio.run(_one(url)) for _ in range(CONNECTIONS)]
    finally:
        server.stop()
    opens, connects = [s[0] for s in samples], [s[1] for s in samples]
    return [
        "",
        "## Socket.IO on /prod: WebSocket open to `connect` "
        f"({CONNECTIONS} connections, one at a time, make run defaults)",
        "",
        "| step | p50 | p95 | mean |",
        "|---|---:|---:|---:|",
        f"| open packet arrives | {_ms(opens, 0.5)} | {_ms(opens, 0.95)} | {statistics.mean(opens) * 1000:.0f} ms |",
        f"| `40` answered: the client's `connect` | {_ms(connects, 0.5)} | {_ms(connects, 0.95)} | "
        f"{statistics.mean(connects) * 1000:.0f} ms |",
    ]
