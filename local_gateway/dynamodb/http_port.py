"""The embedded DynamoDB's HTTP port: DynamoDB's API on a loopback port for outside tools (the AWS CLI, NoSQL
Workbench, a test's boto3 client), and nothing else of what moto's server would answer.

moto's server app answers every AWS service moto mocks and its own `/moto-api/` (`POST /moto-api/reset` empties
every table), reads a body with no deadline while holding the one lock every way in takes (one request with its
head and one byte of a declared body stalled every client, the functions' included), and werkzeug's threaded
server starts a thread for each connection without bound. Here, outside in:

- a `Host` of this machine's (hosts.py), as on the gateway's own port;
- no CORS: any web page could otherwise call it from the developer's browser;
- only `POST /` with a `DynamoDB_20120810.` target, to moto's DynamoDB app alone;
- the whole request (head and body) within the deadline, and the body read in full before moto's lock is
  taken: a slow client holds one thread of its own, never moto;
- at most `max_clients` connections at once; more are closed as soon as they are accepted.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from local_gateway.dynamodb.indexes import moto_answered
from local_gateway.hosts import AllowedHosts, RefusalLog

TARGET_PREFIX = "DynamoDB_20120810."
MAX_BODY_BYTES = 16 * 1024 * 1024  # DynamoDB's own bound on a request
REQUEST_SECONDS = 10.0
MAX_CLIENTS = 64
POLL_SECONDS = 0.05  # how often serve_forever looks for a shutdown: stop() waits that long

Request = socket.socket | tuple[bytes, socket.socket]  # socketserver's request and client address
Address = tuple[str, int] | str


class DeadlineReader(io.RawIOBase):
    """A connection's reads, each allowed only what is left of its request's time."""

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self.connection = connection
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long")
        self.connection.settimeout(left)
        return self.connection.recv_into(buffer)

    def restart(self) -> None:
        """A new allowance: for a new request, or for the answer (writes share the socket's timeout)."""
        self.deadline = time.monotonic() + self.seconds
        self.connection.settimeout(self.seconds)


def http_server(lock: threading.Lock, allowed: AllowedHosts, seconds: float, max_clients: int) -> ThreadedWSGIServer:
    """The server, bound to a free loopback port; serve_forever() serves it."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app

    class Handler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # werkzeug's reader, replaced by one whose reads all share the deadline
            self.reader = DeadlineReader(self.connection, seconds)
            self.rfile = io.BufferedReader(self.reader)

        def make_environ(self) -> WSGIEnvironment:
            environ = super().make_environ()
            environ["local_gateway.reader"] = self.reader
            return environ

    app = _named(_without_cors(_dynamodb_only(_read_first(_serialized(create_backend_app("dynamodb"), lock)))), allowed)
    return BoundedServer(app, Handler, max_clients)


class BoundedServer(ThreadedWSGIServer):
    """werkzeug's threaded server with at most `max_clients` connections (so threads) at once."""

    def __init__(self, app: WSGIApplication, handler: type[WSGIRequestHandler], max_clients: int) -> None:
        super().__init__("127.0.0.1", 0, app, handler=handler)
        self.slots = threading.BoundedSemaphore(max_clients)

    def process_request(self, request: Request, client_address: Address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # closed at once: no thread, no file kept for it
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Request, client_address: Address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _answer(start_response: StartResponse, status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
    return [data]


def _named(app: WSGIApplication, allowed: AllowedHosts) -> WSGIApplication:
    log = RefusalLog()

    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not allowed.allows(environ.get("HTTP_HOST")):  # werkzeug joins two Host headers with a comma
            log.refused("embedded DynamoDB", environ.get("HTTP_HOST"))
            return _answer(start_response, "421 Misdirected Request", {"message": "Not a name of this machine"})
        return app(environ, start_response)

    return call


def _without_cors(app: WSGIApplication) -> WSGIApplication:
    """No CORS: moto's server allows every origin, which would let any web page the developer visits call the
    embedded DynamoDB from the browser. Preflights are refused and moto's Access-Control-* headers dropped."""

    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            start_response("403 Forbidden", [("Content-Length", "0")])
            return [b""]

        def without_cors_headers(
            status: str, headers: list[tuple[str, str]], *exc_info: Any
        ) -> Callable[[bytes], object]:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, *exc_info)

        return app(environ, without_cors_headers)

    return call


def _dynamodb_only(app: WSGIApplication) -> WSGIApplication:
    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in ("", "/"):
            return _answer(start_response, "404 Not Found", {"message": "Only DynamoDB's API is served here"})
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
            return _answer(
                start_response, "400 Bad Request", {"__type": "com.amazon.coral.service#UnknownOperationException"}
            )
        return app(environ, start_response)

    return call


def _read_first(app: WSGIApplication) -> WSGIApplication:
    """The body read in full, within the request's deadline, before anything takes moto's lock; a body that
    does not come in time drops the connection (werkzeug ends it quietly on the timeout)."""

    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH", "")
        if environ.get("wsgi.input_terminated") or not declared.isdigit():  # chunked, or no length
            return _answer(start_response, "411 Length Required", {"message": "A Content-Length is required"})
        if int(declared) > MAX_BODY_BYTES:
            return _answer(start_response, "413 Request Entity Too Large", {"message": "The body is too large"})
        body = environ["wsgi.input"].read(int(declared))
        if len(body) < int(declared):
            return _answer(start_response, "400 Bad Request", {"message": "The body ended before its length"})
        environ["wsgi.input"] = io.BytesIO(body)
        environ["local_gateway.reader"].restart()
        return app(environ, start_response)

    return call


def _serialized(app: WSGIApplication, lock: threading.Lock) -> WSGIApplication:
    """One request at a time, the in-process transports' included (one lock). moto runs a TransactWriteItems by
    deep-copying the table and restores that copy when the transaction is cancelled, silently undoing whatever
    another thread wrote meanwhile (and the copy itself can fail with "dictionary changed size during
    iteration"). The GIL serialized moto's work anyway. Found by the 200-client test in
    tests/test_gateway_resilience.py.
    """

    def call(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with lock:
            try:
                return list(app(environ, start_response))
            finally:
                # whatever it wrote, the item engine's indexes are built again
                moto_answered(environ.get("HTTP_X_AMZ_TARGET", "").removeprefix(TARGET_PREFIX))

    return call
