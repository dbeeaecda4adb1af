"""The test secret and the tokens and signed requests made with it."""

from __future__ import annotations

import time
from typing import Any

SECRET = "test-secret-that-is-long-enough-for-hs256"


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    """A JWT for `$connect`'s `token` query parameter: alice's, for ten minutes, HS256 with SECRET unless told."""
    import jwt

    body = {"sub": "alice", "exp": int(time.time()) + 600, **(claims or {})}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers or None)


def signed_request(
    url: str, method: str = "GET", data: bytes | None = None, service: str = "execute-api", **headers: str
) -> Any:
    """A urllib request SigV4-signed as boto3 signs, with this process's credentials (those the gateway gives
    its functions, since a RunningGateway shares the environment)."""
    import urllib.request

    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
    credentials = boto3.session.Session().get_credentials()
    SigV4Auth(credentials.get_frozen_credentials(), service, "us-east-1").add_auth(request)
    return urllib.request.Request(url, data=data, method=method, headers=dict(request.headers.items()))
