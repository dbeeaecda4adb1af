"""A Management API endpoint over real HTTP that can answer 410."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.support.servers import SERVER_POLL_SECONDS, BackloggedHTTPServer


class ManagementApiEndpoint:
    """`POST/GET/DELETE /@connections/{id}` over real HTTP: records frames, answers 410 for `gone` ids and the
    status in `failing` for failing ones."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)  # the JSON-object frames, parsed
        self.raw: dict[str, list[bytes]] = defaultdict(list)  # every frame delivered (Socket.IO too), as posted
        self.gone: set[str] = set()
        self.failing: dict[str, int] = {}  # connection id -> status to answer (429, 500, ...)
        self.requests = 0
        # Every (method, path) served, in order, whatever client library made the request.
        self.served: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _connection(self) -> str:
                return unquote(self.path.rsplit("/@connections/", 1)[1])

            def _answer(self, status: int, error_type: str | None = None) -> None:
                body = json.dumps({"message": error_type or ""}).encode() if error_type else b""
                self.send_response(status)
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                with endpoint._lock:
                    endpoint.served.append(("POST", self.path))
                connection_id = self._connection()
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint._lock:
                    endpoint.requests += 1
                    if connection_id in endpoint.gone:
                        return self._answer(410, "GoneException")
                    if connection_id in endpoint.failing:
                        status = endpoint.failing[connection_id]
                        # API Gateway's own throttling answer is 429 LimitExceededException.
                        return self._answer(
                            status, "LimitExceededException" if status == 429 else "InternalServerError"
                        )
                    endpoint.raw[connection_id].append(data)
                    try:
                        parsed = json.loads(data)
                    except ValueError:
                        parsed = None  # a Socket.IO frame such as `0{...}` or `42[...]`
                    if isinstance(parsed, dict):
                        endpoint.frames[connection_id].append(parsed)
                self._answer(200)

            def do_GET(self) -> None:
                with endpoint._lock:
                    endpoint.served.append(("GET", self.path))
                    connection_id = self._connection()
                    if connection_id in endpoint.gone:
                        return self._answer(410, "GoneException")
                    status = endpoint.failing.get(connection_id, 200)
                if status != 200:
                    return self._answer(status, "ForbiddenException" if status == 403 else "InternalServerError")
                body = json.dumps({"connectedAt": "2026-11-25T10:00:00.000Z", "identity": {"sourceIp": "127.0.0.1"}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_DELETE(self) -> None:
                with endpoint._lock:
                    endpoint.served.append(("DELETE", self.path))
                    endpoint.gone.add(self._connection())
                self._answer(204)

        self._server = BackloggedHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll: shutdown() waits for it, once per test (the default 0.5 s cost the suite about a minute).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(SERVER_POLL_SECONDS,), daemon=True)

    def start(self) -> ManagementApiEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events(self, connection_id: str, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            frames = list(self.frames.get(connection_id, []))
        return [f for f in frames if name is None or f["event"] == name]

    def raw_frames(self, connection_id: str) -> list[str]:
        """Every body posted to the connection, as text, in order."""
        with self._lock:
            return [body.decode() for body in self.raw.get(connection_id, [])]

    def asked(self, connection_id: str | None = None) -> list[str]:
        """The ids of every `GET /@connections/{id}` (only those of `connection_id`, when given), in order."""
        with self._lock:
            paths = [unquote(path) for method, path in self.served if method == "GET"]
        ids = [path.rsplit("/@connections/", 1)[1] for path in paths]
        return [cid for cid in ids if connection_id is None or cid == connection_id]

    def closed(self, connection_id: str) -> bool:
        """Whether `DELETE /@connections/{id}` was asked for."""
        with self._lock:
            deletes = [unquote(path) for method, path in self.served if method == "DELETE"]
        return any(path.endswith(f"/@connections/{connection_id}") for path in deletes)
