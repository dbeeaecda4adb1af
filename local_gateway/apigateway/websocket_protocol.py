"""uvicorn's WebSocket protocol, compressing (per-message deflate, RFC 7692) only where the endpoint it stands for
does.

- `/{stage}`, the API Gateway WebSocket endpoint: API Gateway accepts a client's permessage-deflate offer (the
  python-websockets client's default offer once broke against it: that project's issue 1065, "Work around bug in
  AWS API Gateway"), so uvicorn's default, which accepts it too, stays.
- `/socket.io/`: Socket.IO's own server leaves compression off unless asked (its `perMessageDeflate` option,
  false by default since Socket.IO 3) for the CPU and memory it costs each connection, and so does this one.
  What that saves is in docs/performance.md.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

SOCKETIO_PATH = "/socket.io/"


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        if event.path.startswith(SOCKETIO_PATH):
            self.conn.available_extensions = []  # the offer is declined: the handshake goes on without it
        super().handle_connect(event)
