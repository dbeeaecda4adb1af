"""The open connections of every front, by API Gateway connection id: what the Management API and the
handlers' in-process poster reach. It holds sockets, never state that belongs in DynamoDB."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from local_gateway.apigw import ConnectionInfo


class Endpoint(Protocol):
    """How frames reach one open connection, through the front it came in by."""

    async def send(self, frame: bytes) -> None: ...

    async def close(self) -> None: ...


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
