"""X-Forwarded-For names the client only when a proxy the developer trusts (TRUSTED_PROXIES) sent it: any other
client, a process on this machine included, cannot choose its own sourceIp (nor escape the per-address cap)."""

from __future__ import annotations

import pytest
import socketio
import websockets

from local_gateway.settings import GatewaySettings
from shared.env_values import ConfigError
from tests.support.servers import RunningGateway, running_gateway, until

CLAIMED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


async def source_ips(gateway: RunningGateway) -> list[str]:
    """The sourceIp of a /prod socket and of a Socket.IO connection, each claiming CLAIMED's address."""
    stage = gateway.url.replace("http", "ws") + "/prod"
    async with websockets.connect(stage, additional_headers=CLAIMED):
        await until(lambda: len(gateway.gateway.registry) == 1)
        (prod,) = [c.info.source_ip for c in gateway.gateway.registry.all()]
    await until(lambda: len(gateway.gateway.registry) == 0)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(gateway.url, transports=["websocket"], headers=CLAIMED, wait_timeout=10)
    (sio,) = [c.info.source_ip for c in gateway.gateway.registry.all()]
    await client.disconnect()
    return [prod, sio]


async def test_forwarded_headers_from_an_untrusted_peer_are_not_believed():
    with running_gateway(METRICS_INTERVAL_SECONDS="30") as gateway:
        assert await source_ips(gateway) == ["127.0.0.1", "127.0.0.1"]


async def test_forwarded_headers_from_a_trusted_proxy_name_the_client():
    with running_gateway(METRICS_INTERVAL_SECONDS="30", TRUSTED_PROXIES="127.0.0.1") as gateway:
        assert await source_ips(gateway) == ["203.0.113.7", "203.0.113.7"]


def test_trusted_proxies_are_none_by_default_and_must_be_addresses():
    assert GatewaySettings.from_env({}).trusted_proxies == ()
    settings = GatewaySettings.from_env({"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"})
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    for bad in ("*", "proxy.example", "10.0.0.0/99"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            GatewaySettings.from_env({"TRUSTED_PROXIES": bad})
