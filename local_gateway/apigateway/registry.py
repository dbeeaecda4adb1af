"""The open connections of every endpoint, by API Gateway connection id: what the Management API and the
handlers' in-process poster reach. It holds sockets, never state that belongs in DynamoDB."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from local_gateway.apigateway.events import ConnectionInfo


class Endpoint(Protocol):
    """How frames reach one open connection, through the endpoint it came in by."""

    async def send(self, frame: bytes) -> None: ...

    async def close(self) -> None: ...

    def fan_out_group(self) -> Hashable | None:
        """Connections of one group take a frame in one call (send_to_group); None: one at a time."""

    async def send_to_group(self, members: list[Endpoint], frame: bytes) -> None:
        """One frame to every member of this endpoint's group."""


@dataclass
class Connection:
    info: ConnectionInfo
    endpoint: Endpoint


class ConnectionRegistry:
    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._connections[connection.info.connection_id] = connection

    def remove(self, connection_id: str) -> Connection | None:
        return self._connections.pop(connection_id, None)

    def get(self, connection_id: str) -> Connection | None:
        return self._connections.get(connection_id)

    def all(self) -> list[Connection]:
        return list(self._connections.values())

    def __len__(self) -> int:
        return len(self._connections)


TOO_MANY_CONNECTIONS = "Too many connections from this address"


class AddressCap:
    """At most `limit` open connections per client address, over both endpoints: one machine on the network cannot
    take them all. A connection takes its place before `$connect` runs (so a flood of handshakes costs no
    function call) and gives it back when it leaves or is refused.

    This machine's own addresses are counted but never refused: every local process shares 127.0.0.1, so a
    local tool holding a thousand sockets (a load test, a leak) would lock the developer's own browser out.
    What bounds them is the bound on open connections of every kind (MAX_CONNECTIONS, http_protocol.py)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, address: str) -> bool:
        if self._open[address] >= self.limit and not is_loopback_address(address):
            return False
        self._open[address] += 1
        return True

    def count(self, address: str) -> int:
        return self._open[address]

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]


def is_loopback_address(host: str) -> bool:
    """Whether an address is this machine's loopback (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def client_address(scope: Mapping[str, Any]) -> str:
    """The peer's address, from an ASGI scope (the Socket.IO endpoint reads it from its WSGI-like environ's)."""
    return str((scope.get("client") or ("127.0.0.1",))[0])
