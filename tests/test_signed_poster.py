"""SignedPoster, the fan-out engine: its HTTP behaviour against real local endpoints (signature checks, retries,
410, failures, dropped keep-alive connections, timeouts, TLS). Its signer and its retries are held to botocore's in
tests/test_sigv4.py and tests/test_retries.py."""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.errors import ConnectionGone
from shared.poster import CheckFailed, PostFailed
from shared.retries import NO_ANSWER, StandardRetries
from shared.signed_poster import SignedPoster

FRAME = b'{"event":"analytics:liveMetrics","data":[{"name":"Active Users","value":1}]}'


AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/execute-api/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class SigningEndpoint:
    """`POST` and `GET {stage}/@connections/{id}` over HTTP/1.1 keep-alive. It checks every SigV4 signature as API
    Gateway would (recomputed with botocore from what arrived on the wire, 403 when wrong) and answers each id from
    a script of statuses (then 200)."""

    def __init__(self, credentials: dict[str, tuple[str, str | None]], tls: ssl.SSLContext | None = None) -> None:
        self.credentials = credentials  # access key -> (secret, session token)
        self.script: dict[str, list[int]] = {}
        self.delivered: dict[str, list[bytes]] = defaultdict(list)
        self.asked: list[str] = []  # the ids of every GET, in order
        self.requests: Counter[str] = Counter()
        self.rejected: list[str] = []
        self.connections = 0
        self.drop_after_answer = False  # close the socket after answering, without saying so (a stale keep-alive)
        self.chunked = False
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with endpoint._lock:
                    endpoint.connections += 1

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                connection_id, status = self.scripted("POST", body)
                if status == 200:
                    with endpoint._lock:
                        endpoint.delivered[connection_id].append(body)
                self.answer(status)

            def do_GET(self) -> None:
                # API Gateway's GetConnection: no body asked for, the connection's details in the answer.
                connection_id, status = self.scripted("GET", b"")
                with endpoint._lock:
                    endpoint.asked.append(connection_id)
                self.answer(status, b'{"connectedAt":"2026-11-25T10:00:00.000Z"}')

            def scripted(self, method: str, body: bytes) -> tuple[str, int]:
                connection_id = unquote(self.path.rsplit("/@connections/", 1)[1])
                problem = endpoint.check(self.path, self.headers, body, method)
                with endpoint._lock:
                    endpoint.requests[connection_id] += 1
                    if problem:
                        endpoint.rejected.append(problem)
                        return connection_id, 403
                    script = endpoint.script.get(connection_id)
                    return connection_id, script.pop(0) if script else 200

            def answer(self, status: int, ok_body: bytes = b"") -> None:
                body = b'{"message":"scripted"}' if status >= 300 else ok_body
                self.send_response(status)
                if endpoint.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body, b"") if part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                self.close_connection = endpoint.drop_after_answer

        ThreadingHTTPServer.request_queue_size = 128  # 32 connections at once must not overflow the backlog
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:  # HTTPS: the handshake happens on accept; a client that refuses it is never served
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}/prod"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def check(self, path: str, headers: Any, body: bytes, method: str = "POST") -> str | None:
        match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
        if match is None or match["key"] not in self.credentials:
            return "malformed or unknown credential"
        secret, token = self.credentials[match["key"]]
        signed = match["signed"].split(";")
        if not {"host", "x-amz-date"} <= set(signed) or headers.get("X-Amz-Security-Token") != token:
            return "wrong session token or unsigned host/date"
        if token is not None and "x-amz-security-token" not in signed:
            return "session token not signed"
        if match["day"] != headers["X-Amz-Date"][:8]:
            return "scope day is not the request's day"
        request = AWSRequest(
            method=method, url=f"http://{headers['Host']}{path}", data=body, headers={n: headers[n] for n in signed}
        )
        request.context["timestamp"] = headers["X-Amz-Date"]
        verifier = SigV4Auth(Credentials(match["key"], secret, token), "execute-api", match["region"])
        expected = verifier.signature(verifier.string_to_sign(request, verifier.canonical_request(request)), request)
        return None if hmac.compare_digest(expected, match["signature"]) else "signature mismatch"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def credentials() -> Credentials:
    return Credentials("AKIDFIRST", "first/secret+key", "FwoGZXIvYXdzEJr//first+token==")


@pytest.fixture
def endpoint(credentials: Credentials) -> Iterator[SigningEndpoint]:
    server = SigningEndpoint(
        {
            credentials.access_key: (credentials.secret_key, credentials.token),
            "AKIDROTATED": ("rotated-secret", "rotated-token"),
            "AKIDSTATIC": ("static-secret", None),
        }
    )
    yield server
    server.stop()


class Backoffs:
    """An injectable sleep that records each backoff instead of waiting it out (429 alone waits up to 1 s)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def backoffs() -> Backoffs:
    return Backoffs()


@pytest.fixture
def poster(endpoint: SigningEndpoint, credentials: Credentials, backoffs: Backoffs) -> Iterator[SignedPoster]:
    engine = SignedPoster(endpoint.url, credentials, "eu-west-1", connections=4, attempts=4, sleep=backoffs)
    yield engine
    engine.close()


# -- on the wire -------------------------------------------------------------------------------
def test_signed_poster_signatures_verify_on_the_wire_over_keep_alive_connections(endpoint, poster) -> None:
    ids = [f"conn{i:04d}=" for i in range(200)]
    assert poster.post_many(ids, FRAME) == []
    poster.post("single+/id", FRAME)
    assert endpoint.rejected == []
    assert all(endpoint.delivered[cid] == [FRAME] for cid in [*ids, "single+/id"])
    assert endpoint.connections <= 4  # 201 posts over the 4 keep-alive connections, not one connection per post


def test_signed_poster_signs_with_rotated_credentials_from_the_next_fan_out(endpoint, poster, credentials) -> None:
    assert poster.post_many(["a", "b"], FRAME) == []
    credentials.access_key, credentials.secret_key, credentials.token = "AKIDROTATED", "rotated-secret", "rotated-token"
    assert poster.post_many(["c", "d"], FRAME) == []
    credentials.access_key, credentials.secret_key, credentials.token = "AKIDSTATIC", "static-secret", None
    poster.post("e", FRAME)
    assert endpoint.rejected == []
    assert sorted(endpoint.delivered) == ["a", "b", "c", "d", "e"]


def test_signed_poster_reads_chunked_answers(endpoint, poster) -> None:
    endpoint.chunked = True
    endpoint.script = {"gone": [410]}
    assert poster.post_many(["a", "gone", "b", "c"], FRAME) == ["gone"]
    assert sorted(endpoint.delivered) == ["a", "b", "c"]


# -- answers: 410, retries, failures -----------------------------------------------------------
def test_signed_poster_410_is_connection_gone_without_a_retry(endpoint, poster) -> None:
    endpoint.script = {"gone": [410, 410, 410, 410]}
    with pytest.raises(ConnectionGone):
        poster.post("gone", FRAME)
    assert endpoint.requests["gone"] == 1


def test_signed_poster_retries_429_and_5xx_then_delivers(endpoint, poster) -> None:
    endpoint.script = {"flaky": [429, 503, 500]}
    poster.post("flaky", FRAME)
    assert endpoint.requests["flaky"] == 4
    assert endpoint.delivered["flaky"] == [FRAME]


def test_signed_poster_gives_up_with_post_failed_after_its_attempts(endpoint, poster) -> None:
    endpoint.script = {"down": [502] * 10}
    with pytest.raises(PostFailed) as failure:
        poster.post("down", FRAME)
    assert failure.value.status == 502
    assert endpoint.requests["down"] == 4  # attempts=4


def test_signed_poster_other_errors_are_post_failed_without_a_retry(endpoint, poster) -> None:
    endpoint.script = {"bad": [400]}
    with pytest.raises(PostFailed) as failure:
        poster.post("bad", FRAME)
    assert (failure.value.status, endpoint.requests["bad"]) == (400, 1)


def test_post_many_one_failing_connection_never_stops_the_fan_out(endpoint, poster, caplog) -> None:
    endpoint.script = {"bad": [403], "down": [500] * 10, "gone2": [410], "gone1": [410], "flaky": [503]}
    ids = ["ok1", "bad", "gone2", "down", "ok2", "flaky", "gone1", "ok3"]
    with caplog.at_level(logging.WARNING, logger="shared.signed_poster"):
        assert poster.post_many(ids, FRAME) == ["gone2", "gone1"]  # in the order given
    assert sorted(endpoint.delivered) == ["flaky", "ok1", "ok2", "ok3"]
    # Each failure told at WARNING, without the connection's id (ids are DEBUG only).
    assert "a post failed with HTTP 403" in caplog.text and "a post failed with HTTP 500" in caplog.text
    assert "bad" not in caplog.text and "down" not in caplog.text


# -- GET: is the connection still there? -------------------------------------------------------
def test_signed_poster_asks_with_a_signed_get_on_the_same_keep_alive_connections(endpoint, poster) -> None:
    endpoint.script = {"gone": [410], "flaky": [503, 200], "bad": [400], "down": [500] * 10}
    poster.post_many([f"c{i}" for i in range(8)], FRAME)
    opened = endpoint.connections
    assert [poster.is_connected(cid) for cid in ("here", "gone", "flaky", "single+/id=")] == [True, False, True, True]
    assert endpoint.rejected == []  # every GET's signature verified, as API Gateway verifies it
    assert endpoint.connections == opened  # no new connection: the posts' keep-alive ones
    assert (endpoint.requests["gone"], endpoint.requests["flaky"]) == (1, 2)  # 410 at once; 503 retried
    with pytest.raises(CheckFailed) as refused:
        poster.is_connected("bad")
    assert (refused.value.status, endpoint.requests["bad"]) == (400, 1)  # not retried, and not "gone"
    with pytest.raises(CheckFailed) as failure:
        poster.is_connected("down")
    assert (failure.value.status, endpoint.requests["down"]) == (500, 4)  # attempts=4, then unknown, not gone
    assert endpoint.asked == ["here", "gone", "flaky", "flaky", "single+/id=", "bad", *["down"] * 4]
    assert "single+/id=" not in endpoint.delivered  # a GET delivers nothing


# -- connections: dropped, silent, refused -----------------------------------------------------
def test_signed_poster_reconnects_when_the_server_dropped_an_idle_connection(endpoint, credentials) -> None:
    endpoint.drop_after_answer = True  # every answer looks keep-alive, then the socket closes
    engine = SignedPoster(endpoint.url, credentials, "eu-west-1", connections=2, attempts=1)
    try:
        for round_ in range(3):
            time.sleep(0.05)
            assert engine.post_many([f"r{round_}a", f"r{round_}b", f"r{round_}c"], FRAME) == []
            engine.post(f"r{round_}single", FRAME)
    finally:
        engine.close()
    assert len(endpoint.delivered) == 12  # with attempts=1: a dropped idle connection costs no attempt


def test_signed_poster_times_out_a_silent_endpoint_with_post_failed(credentials) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nobody ever answers
    engine = SignedPoster(
        f"http://127.0.0.1:{silent.getsockname()[1]}", credentials, "eu-west-1", attempts=2, read_timeout=0.3
    )
    try:
        started = time.monotonic()
        with pytest.raises(PostFailed) as failure:
            engine.post("a", FRAME)
        assert failure.value.status == 0
        assert time.monotonic() - started < 3
        assert engine.post_many(["a", "b"], FRAME) == []  # failed, not gone: they stay subscribed
    finally:
        engine.close()
        silent.close()


def test_signed_poster_refused_connection_is_post_failed(credentials) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    engine = SignedPoster(f"http://127.0.0.1:{port}", credentials, "eu-west-1", attempts=2)
    try:
        with pytest.raises(PostFailed) as failure:
            engine.post("a", FRAME)
        assert failure.value.status == 0
        assert engine.post_many(["a", "b", "c"], FRAME) == []
    finally:
        engine.close()


# -- retries: botocore's standard mode (tests/test_retries.py), as the engine waits them -------
def test_signed_poster_waits_botocores_backoffs_between_attempts(endpoint, credentials, backoffs) -> None:
    endpoint.script = {"flaky": [429, 503, 500, 502, 504]}
    retries = StandardRetries(max_attempts=6, random=lambda: 1.0)  # the top of every jitter range
    engine = SignedPoster(endpoint.url, credentials, "eu-west-1", retries=retries, sleep=backoffs)
    try:
        engine.post("flaky", FRAME)
    finally:
        engine.close()
    assert backoffs.delays == pytest.approx([1.0, 0.1, 0.2, 0.4, 0.8])  # 429 from 1 s, the rest from 50 ms
    # Five retries took 5 + 4 x 14; the success gives back only what the last one took, as botocore does.
    assert (endpoint.requests["flaky"], retries.available) == (6, 500 - 5 - 4 * 14 + 14)


def test_the_retry_quota_is_shared_by_a_whole_fan_out_and_stops_retries_when_spent(
    endpoint, credentials, backoffs
) -> None:
    ids = [f"down{i}" for i in range(10)]
    endpoint.script = {cid: [503] * 10 for cid in ids} | {"throttled": [429, 429]}
    retries = StandardRetries(max_attempts=6, capacity=30)
    engine = SignedPoster(endpoint.url, credentials, "eu-west-1", connections=4, retries=retries, sleep=backoffs)
    try:
        assert engine.post_many(ids, FRAME) == []  # failed, not gone
        assert sum(endpoint.requests[cid] for cid in ids) == 10 + 2  # two retries of 14 each, then none: 2 left
        assert retries.available == 2
        with pytest.raises(PostFailed) as failure:
            engine.post("throttled", FRAME)  # a throttling retry costs 5: not even that
        assert (failure.value.status, endpoint.requests["throttled"]) == (429, 1)
    finally:
        engine.close()


def test_a_success_gives_back_its_retry_cost_or_one_and_never_more_than_the_capacity(
    endpoint, credentials, backoffs
) -> None:
    endpoint.script = {"flaky": [503], "down": [500, 500], "throttled": [429]}
    retries = StandardRetries(max_attempts=2, capacity=30)
    engine = SignedPoster(endpoint.url, credentials, "eu-west-1", retries=retries, sleep=backoffs)
    try:
        engine.post("ok", FRAME)
        assert retries.available == 30  # full: nothing to give back
        engine.post("flaky", FRAME)
        assert retries.available == 30  # took 14 for the retry, got the 14 back with the 200
        with pytest.raises(PostFailed):
            engine.post("down", FRAME)
        assert retries.available == 16  # a failure gives nothing back
        engine.post("ok", FRAME)
        assert retries.available == 17  # a success without a retry gives back 1
        engine.post("throttled", FRAME)
        assert retries.available == 17  # took 5, got 5 back
    finally:
        engine.close()


# -- TLS ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signed-poster test endpoint")])
    now = datetime.datetime.now(datetime.UTC)
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(identifier, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def tls_endpoint(certificate: tuple[str, str], credentials: Credentials) -> Iterator[SigningEndpoint]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = SigningEndpoint({credentials.access_key: (credentials.secret_key, credentials.token)}, tls=context)
    yield server
    server.stop()


def test_signed_poster_posts_over_tls_to_an_endpoint_it_trusts(
    tls_endpoint, certificate, credentials, backoffs
) -> None:
    trusted = ssl.create_default_context(cafile=certificate[0])  # verifies the chain and the host name as usual
    engine = SignedPoster(
        tls_endpoint.url, credentials, "eu-west-1", connections=4, ssl_context=trusted, sleep=backoffs
    )
    ids = [f"tls{i:03d}=" for i in range(100)]
    tls_endpoint.script = {"gone": [410], "flaky": [503]}
    try:
        assert tls_endpoint.url.startswith("https://")
        assert engine.post_many([*ids, "gone", "flaky"], FRAME) == ["gone"]
        engine.post("single+/id", FRAME)
    finally:
        engine.close()
    assert tls_endpoint.rejected == []  # every signature verified
    assert all(tls_endpoint.delivered[cid] == [FRAME] for cid in [*ids, "flaky", "single+/id"])
    assert tls_endpoint.connections <= 4  # 104 requests over 4 kept-alive TLS connections: one handshake each


def test_signed_poster_refuses_an_untrusted_certificate_as_post_failed(tls_endpoint, credentials, backoffs) -> None:
    engine = SignedPoster(tls_endpoint.url, credentials, "eu-west-1", attempts=2, sleep=backoffs)  # the system's CAs
    try:
        with pytest.raises(PostFailed) as failure:
            engine.post("a", FRAME)
        assert failure.value.status == NO_ANSWER
        assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)
        assert engine.post_many(["b", "c"], FRAME) == []  # failed, not gone
    finally:
        engine.close()
    assert tls_endpoint.requests == Counter()  # no request ever reached the endpoint
