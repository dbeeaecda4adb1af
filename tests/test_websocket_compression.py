"""Per-message deflate is negotiated where the endpoint the gateway stands for negotiates it: on /{stage}, as API
Gateway does, and not on /socket.io/, as Socket.IO's own server does not by default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate

from tests.support.servers import RunningGateway


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    yield running
    running.stop()


async def test_the_stage_endpoint_accepts_a_deflate_offer(gateway):
    async with websockets.connect(gateway.url.replace("http", "ws") + "/prod") as ws:  # offers it by default
        assert [type(extension) for extension in ws.protocol.extensions] == [PerMessageDeflate]
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")


async def test_the_socketio_endpoint_declines_a_deflate_offer_and_serves_on(gateway):
    url = gateway.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url) as ws:
        assert ws.protocol.extensions == []
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert (await ws.recv()).startswith("0{")  # Engine.IO's open packet
        await ws.send("40")
        assert (await ws.recv()).startswith("40{")  # the namespace CONNECT answer
