"""DNS rebinding: a request that names the gateway by another name (a web page's own, pointed at 127.0.0.1) is
refused with 421 on every route, before anything runs; the gateway's own names are served."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import socketio

from local_gateway.hosts import AllowedHosts, host_name
from local_gateway.settings import GatewaySettings
from shared.env_values import ConfigError
from tests.support.servers import RunningGateway, first_line, upgrade_request

MISDIRECTED = "HTTP/1.1 421 Misdirected Request"
REBOUND = "rebound.attacker.example"  # a name whose DNS the attacker points at 127.0.0.1
ROUTES = [
    ("GET", "/"),
    ("GET", "/page/page.js"),
    ("GET", "/health"),
    ("GET", "/socket.io/?EIO=4&transport=polling"),
    ("POST", "/socket.io/?EIO=4&transport=polling&sid=x"),
    ("POST", "/dashboards/sales/updates"),
    ("GET", "/@connections/AAAAAAAAAAAAAAA="),
    ("POST", "/prod/@connections/AAAAAAAAAAAAAAA="),
    ("POST", "/2015-03-31/functions/ConnectFunction/invocations"),
    ("GET", "/no/such/route"),
]
UPGRADES = ["/prod", "/socket.io/?EIO=4&transport=websocket"]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="30").start()
    yield running
    running.stop()


def request(method: str, path: str, host: str | None) -> bytes:
    host_line = "" if host is None else f"Host: {host}\r\n"
    return (
        f"{method} {path} HTTP/1.1\r\n{host_line}Content-Type: application/json\r\nContent-Length: 2\r\n"
        f"Origin: http://{host}\r\n\r\n{{}}"
    ).encode()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_host_that_is_not_the_gateways(gateway, method, path):
    for host in (f"{REBOUND}:{gateway.port}", REBOUND, "127.0.0.1.attacker.example", "localhost@evil.example"):
        assert first_line(gateway.port, request(method, path, host)) == MISDIRECTED, host


@pytest.mark.parametrize("path", UPGRADES)
def test_every_websocket_upgrade_refuses_a_host_that_is_not_the_gateways(gateway, path):
    upgrade = upgrade_request(path, f"{REBOUND}:{gateway.port}", f"Origin: http://{REBOUND}:{gateway.port}")
    assert first_line(gateway.port, upgrade) == MISDIRECTED
    own = upgrade_request(path, f"localhost:{gateway.port}")
    assert first_line(gateway.port, own) == "HTTP/1.1 101 Switching Protocols"


def test_no_host_or_two_hosts_are_refused_too(gateway):
    assert first_line(gateway.port, b"GET /health HTTP/1.0\r\n\r\n") == "HTTP/1.1 421 Misdirected Request"
    two = f"GET /health HTTP/1.1\r\nHost: localhost:{gateway.port}\r\nHost: {REBOUND}\r\n\r\n".encode()
    assert first_line(gateway.port, two) == MISDIRECTED


def test_the_gateways_own_names_are_served(gateway):
    port = gateway.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST", "localhost."):
        assert first_line(port, request("GET", "/health", host)) == "HTTP/1.1 200 OK", host


async def test_a_rebound_page_can_neither_publish_nor_connect(gateway):
    """What DNS rebinding was for: a foreign page publishing to a dashboard or opening a /prod socket."""
    client = socketio.AsyncClient(reconnection=False)
    updates: list = []
    client.on("analytics:dashboardUpdate", updates.append)
    await client.connect(gateway.url, transports=["websocket"], wait_timeout=10)
    assert await client.call("analytics:joinDashboard", "sales", timeout=10) == {"ok": True}
    publish = request("POST", "/dashboards/sales/updates", f"{REBOUND}:{gateway.port}")
    assert await asyncio.to_thread(first_line, gateway.port, publish) == MISDIRECTED
    upgrade = upgrade_request("/prod", f"{REBOUND}:{gateway.port}")
    assert await asyncio.to_thread(first_line, gateway.port, upgrade) == MISDIRECTED
    await asyncio.sleep(0.3)
    assert updates == [] and len(gateway.gateway.registry) == 1  # the client's own connection alone
    await client.disconnect()


def test_allowed_hosts_names_more_and_refuses_what_is_not_a_name():
    assert GatewaySettings.from_env({}).allowed_hosts == ()
    settings = GatewaySettings.from_env({"ALLOWED_HOSTS": " dev.example , [FE80::1], 10.0.0.7,"})
    assert settings.allowed_hosts == ("dev.example", "fe80::1", "10.0.0.7")
    allowed = AllowedHosts.of("127.0.0.1", settings.allowed_hosts)
    assert all(allowed.allows(h) for h in ("dev.example:4000", "[fe80::1]:4000", "10.0.0.7", "DEV.EXAMPLE"))
    assert not allowed.allows("other.example") and not allowed.allows(None) and not allowed.allows("")
    assert AllowedHosts.of("127.0.0.1", ("*",)).allows("anything.example")
    for bad in ("dev.example:4000", "a b", "http://dev.example", "user@dev.example"):
        with pytest.raises(ConfigError, match="ALLOWED_HOSTS"):
            GatewaySettings.from_env({"ALLOWED_HOSTS": bad})


def test_the_bound_address_is_a_name_and_a_bind_to_every_address_names_each_of_this_machines():
    assert AllowedHosts.of("192.0.2.10").allows("192.0.2.10:4000")
    assert not AllowedHosts.of("127.0.0.1").allows("192.0.2.10:4000")
    assert AllowedHosts.of("0.0.0.0").allows("127.0.0.1") and not AllowedHosts.of("0.0.0.0").allows("0.0.0.0")
    assert host_name("[::1]:4000") == "::1" and host_name("Example.COM.:80") == "example.com"
    assert host_name("a b") is None and host_name("localhost:http") is None
