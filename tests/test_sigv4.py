"""The fan-out engine's SigV4 signer (shared/sigv4.py) against botocore's SigV4Auth: the same headers, byte for
byte, for POST and GET on connection ids that need escaping, and one signing key per day and secret."""

from __future__ import annotations

import datetime
from hashlib import sha256
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shared.sigv4 import SigV4Signer

FRAME = b'{"event":"analytics:liveMetrics","data":[{"name":"Active Users","value":1}]}'
IDS = ["AAAAAAAAAAAAAAA=", "L0SM9cOFvHcCIhw=", "a+b/c", "100%", "\u00fcn\u00ef", "~x", "sp ace", ".", "..", ""]


@pytest.mark.parametrize(
    "endpoint_url, host",
    [
        (
            "https://abc123defg.execute-api.eu-west-1.amazonaws.com/production",
            "abc123defg.execute-api.eu-west-1.amazonaws.com",
        ),
        ("http://127.0.0.1:3001", "127.0.0.1:3001"),
        ("https://Example.COM:443/stage/", "example.com"),  # lowercase, and no default port: as SigV4Auth signs it
        ("http://localhost:8080/a/b", "localhost:8080"),
    ],
)
def test_signer_matches_botocore_sigv4auth_byte_for_byte(
    endpoint_url: str, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = datetime.datetime(2026, 11, 25, 23, 59, 59)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: moment)  # botocore's clock
    signer = SigV4Signer(endpoint_url, "execute-api", "eu-west-1")
    # Two credential sets in a row on one signer: the cached signing key must follow the secret.
    for credentials in (Credentials("AKIDA", "secret/A+", "token//A=="), Credentials("AKIDB", "secretB", None)):
        for connection_id in IDS:
            url = f"{endpoint_url.rstrip('/')}/@connections/{quote(connection_id, safe='')}"
            reference = AWSRequest(method="POST", url=url, data=FRAME)
            SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(reference)
            lines = signer.headers(
                signer.path(connection_id),
                sha256(FRAME).hexdigest(),
                credentials.get_frozen_credentials(),
                "20261125T235959Z",
            )
            ours = dict(line.split(": ", 1) for line in lines.split("\r\n") if line)
            assert ours == dict(reference.headers.items()), connection_id
            assert signer.host == host  # the Host header sent, which the signature above covers
            assert url.endswith(signer.path(connection_id))


def test_signer_derives_the_signing_key_once_per_day_and_secret() -> None:
    signer = SigV4Signer("https://x.execute-api.us-east-1.amazonaws.com/prod", "execute-api", "us-east-1")
    key = signer.signing_key("secret", "20261125")
    assert signer.signing_key("secret", "20261125") is key
    assert signer.signing_key("secret", "20261126") != key
    assert signer.signing_key("other", "20261125") != key
    assert signer.signing_key("secret", "20261125") == key


def test_signer_signs_a_get_as_botocore_does(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = datetime.datetime(2026, 11, 25, 12, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: moment)
    endpoint_url = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod"
    signer = SigV4Signer(endpoint_url, "execute-api", "eu-west-1")
    credentials = Credentials("AKIDA", "secret/A+", "token//A==")
    for connection_id in IDS:
        reference = AWSRequest(method="GET", url=f"{endpoint_url}/@connections/{quote(connection_id, safe='')}")
        SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(reference)
        path, empty = signer.path(connection_id), sha256(b"").hexdigest()
        lines = signer.headers(path, empty, credentials.get_frozen_credentials(), "20261125T120000Z", "GET")
        assert dict(line.split(": ", 1) for line in lines.split("\r\n") if line) == dict(reference.headers.items())
