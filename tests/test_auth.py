"""Who may connect and where: JWT on $connect (HS256 or RS256 against a JWKS), the dashboards claim, tokens kept
out of logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers import connect, join_dashboard
from shared.config import AuthSettings
from shared.counters import Counts
from tests.support.events import connect_event, message_event
from tests.support.tokens import SECRET, token

A, B, C = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC="


def keys(svc) -> set[tuple[str, str]]:
    return {(i["PK"]["S"], i["SK"]["S"]) for i in svc.table.client.scan(TableName=svc.config.table_name)["Items"]}


def connecting(cid: str, query: dict[str, str] | None) -> dict:
    return connect.handler(connect_event(cid, query), None)


@pytest.fixture
def hs256(lambda_env, monkeypatch):
    auth = AuthSettings(jwt_secret=SECRET)
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, auth=auth))
    return lambda_env


class JwksServer:
    """A JWKS document over real HTTP, as an identity provider serves it."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rs256(lambda_env, monkeypatch, rsa_key) -> Iterator[tuple[Any, JwksServer]]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    server = JwksServer({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]})
    auth = AuthSettings(jwks_url=server.url, audience="analytics")
    monkeypatch.setattr(lambda_env, "config", dataclasses.replace(lambda_env.config, auth=auth))
    yield lambda_env, server
    server.stop()


def test_auth_is_off_by_default(lambda_env):
    assert not lambda_env.config.auth.enabled
    assert connecting(A, None)["statusCode"] == 200


def test_connect_without_a_token_is_refused_and_stores_nothing(hs256):
    result = connecting(A, {"userId": "alice"})
    assert result == {"statusCode": 401, "body": "Unauthorized"}
    assert keys(hs256) == set()


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-jwt",
        "",
        token(key="another-secret-of-the-same-length-for-hs256"),
        token({"exp": int(time.time()) - 3600}),
        token({"sub": None}),
        token({"sub": ""}),
        token({"dashboards": "sales"}),
        token({"dashboards": ["not valid!"]}),
        jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, None, algorithm="none"),
        token(algorithm="HS512"),
    ],
    ids=[
        "garbage",
        "empty",
        "forged",
        "expired",
        "sub-null",
        "sub-empty",
        "claim-not-list",
        "claim-bad-id",
        "no-exp",
        "alg-none",
        "alg-hs512",
    ],
)
def test_connect_with_a_bad_token_is_refused(hs256, bad):
    assert connecting(A, {"token": bad}) == {"statusCode": 401, "body": "Unauthorized"}
    assert keys(hs256) == set()


def test_the_token_sub_is_the_user_and_user_id_is_not_trusted(hs256):
    assert connecting(A, {"token": token(), "userId": "mallory"})["statusCode"] == 200
    assert connecting(B, {"token": token()})["statusCode"] == 200
    assert connecting(C, {"token": token({"sub": "auth0|bob@example.com"})})["statusCode"] == 200
    assert hs256.counters.read() == Counts(connections=3, active_users=2)
    assert not any("mallory" in pk for pk, _ in keys(hs256))
    assert ("USER#alice", f"CONN#{A}") in keys(hs256)


def test_rs256_tokens_are_checked_against_the_jwks(rs256, rsa_key):
    svc, server = rs256
    good = token({"aud": "analytics"}, key=rsa_key, algorithm="RS256", kid="key-1")
    assert connecting(A, {"token": good})["statusCode"] == 200
    assert connecting(B, {"token": good})["statusCode"] == 200
    assert server.requests == 1  # the key set is cached
    assert svc.counters.read().active_users == 1


@pytest.mark.parametrize("case", ["other-key", "wrong-audience", "unknown-kid", "hs256-with-public-key"])
def test_rs256_refuses_tokens_the_jwks_does_not_vouch_for(rs256, rsa_key, case):
    svc, _ = rs256
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "other-key": lambda: token({"aud": "analytics"}, key=other, algorithm="RS256", kid="key-1"),
        "wrong-audience": lambda: token({"aud": "elsewhere"}, key=rsa_key, algorithm="RS256", kid="key-1"),
        "unknown-kid": lambda: token({"aud": "analytics"}, key=rsa_key, algorithm="RS256", kid="key-2"),
        "hs256-with-public-key": lambda: token({"aud": "analytics"}, key=SECRET, kid="key-1"),
    }[case]()
    assert connecting(A, {"token": bad}) == {"statusCode": 401, "body": "Unauthorized"}
    assert keys(svc) == set()


def test_the_dashboards_claim_limits_where_a_connection_may_join(hs256, management_api):
    assert connecting(A, {"token": token({"dashboards": ["sales", "ops"]})})["statusCode"] == 200
    ok = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    assert json.loads(ok["body"]) == {"ok": True}
    before, counts = keys(hs256), hs256.counters.read()
    refused = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "payroll"), None)
    assert refused["statusCode"] == 403
    assert json.loads(refused["body"]) == {"ok": False, "error": "This connection may not join that dashboard"}
    (error,) = management_api.events(A, "analytics:error")
    assert error["data"] == {
        "message": "This connection may not join that dashboard",
        "event": "analytics:joinDashboard",
    }
    assert keys(hs256) == before and hs256.counters.read() == counts


def test_an_empty_dashboards_claim_allows_no_dashboard(hs256, management_api):
    assert connecting(A, {"token": token({"dashboards": []})})["statusCode"] == 200
    result = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "sales"), None)
    assert result["statusCode"] == 403


def test_without_the_claim_every_dashboard_is_allowed(hs256):
    assert connecting(A, {"token": token()})["statusCode"] == 200
    result = join_dashboard.handler(message_event(A, "analytics:joinDashboard", "anything"), None)
    assert json.loads(result["body"]) == {"ok": True}


def test_tokens_and_secrets_never_reach_the_logs(hs256, management_api, caplog):
    good, forged = token({"dashboards": ["sales"]}), token(key="another-secret-of-the-same-length-for-hs256")
    with caplog.at_level(logging.DEBUG):
        connecting(A, {"token": good})
        connecting(B, {"token": forged})
        connecting(C, {"token": good.rsplit(".", 1)[0] + ".bad-signature"})
        join_dashboard.handler(message_event(A, "analytics:joinDashboard", "payroll"), None)
    assert any("token refused" in record.getMessage() for record in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + str(record.args) + (record.exc_text or "")
        for secret in (good, forged, SECRET, good.split(".")[2], forged.split(".")[2]):
            assert secret not in text


async def test_with_auth_on_a_socketio_client_faking_the_handshake_in_auth_is_refused_and_nothing_stored():
    """`auth: {"EIO": "4"}` once made `$connect` take the client for a deployed Socket.IO handshake, registered as
    pending until its CONNECT, instead of refusing it for want of a token."""
    import socketio

    from tests.support.servers import running_gateway

    with running_gateway(AUTH_JWT_SECRET=SECRET, METRICS_INTERVAL_SECONDS="30") as gateway:
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(gateway.url, auth={"EIO": "4"}, wait_timeout=10)
        environment = gateway.gateway.environment
        items = environment.dynamodb.scan(TableName=environment.config.table_name)["Items"]
    assert not [item for item in items if item["PK"]["S"].startswith("CONN#")]
