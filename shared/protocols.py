"""Which protocol a connection speaks, and the one place a server event is encoded for it.

A connection's protocol is decided on `$connect` (`EIO=4` in the query string: Socket.IO; otherwise JSON
frames) and kept on its items, so every sender (replies, pushes, dashboard updates, fan-out workers) encodes
for it here, once per protocol per fan-out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from shared import socketio_codec
from shared.codec import encode_server_frame

JSON = "json"
SOCKETIO = "socketio"
PROTOCOLS = (JSON, SOCKETIO)
ENGINE_IO_VERSION = "4"


def of_connect(query: Mapping[str, str]) -> str:
    """The protocol a `$connect` asks for: Engine.IO 4 over the websocket transport is Socket.IO."""
    return SOCKETIO if query.get("EIO") == ENGINE_IO_VERSION else JSON


def server_frame(protocol: str, event: str, data: Any, offset: str | None = None) -> bytes:
    """One server event encoded for one protocol; ValueError when `data` is not JSON (NaN, Infinity)."""
    if protocol == SOCKETIO:
        return socketio_codec.event(event, data, offset).encode()
    return encode_server_frame(event, data, offset)


class FramesByProtocol:
    """One event, encoded at most once per protocol however many connections receive it."""

    def __init__(self, event: str, data: Any, offset: str | None = None) -> None:
        self.event = event
        self.data = data
        self.offset = offset
        self._frames: dict[str, bytes] = {}

    def for_protocol(self, protocol: str) -> bytes:
        if protocol not in self._frames:
            self._frames[protocol] = server_frame(protocol, self.event, self.data, self.offset)
        return self._frames[protocol]


def group_by_protocol(recipients: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(connection id, protocol) pairs -> connection ids per protocol, in the order given."""
    groups: dict[str, list[str]] = defaultdict(list)
    for connection_id, protocol in recipients:
        groups[protocol].append(connection_id)
    return dict(groups)
