"""SigV4 checks for the gateway's service APIs (the Management API, Lambda's Invoke API): as in AWS, only a
request signed with the credentials the gateway gives its functions gets in, for the service the API is (`execute-api`
for @connections, `lambda` for Invoke) in the region the functions are configured with.

The signature is recomputed with botocore's SigV4Auth over what arrived (method, raw path, query, the headers
the client says it signed, the body), so whatever boto3 or SignedPoster sends verifies and nothing else does.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from starlette.requests import Request

from local_gateway.apigateway.registry import is_loopback_address

MAX_CLOCK_SKEW_SECONDS = 300  # what AWS allows before "Signature expired"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9\-;]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: `unknown` (no or someone else's credentials) or `invalid` (a bad signature)."""

    kind: str
    message: str


MISSING = Refusal("unknown", "Missing Authentication Token")
UNKNOWN_KEY = Refusal("unknown", "The security token included in the request is invalid.")
MISMATCH = Refusal("invalid", "The request signature we calculated does not match the signature you provided.")
EXPIRED = Refusal("invalid", "Signature expired: the request's X-Amz-Date is too far from the gateway's clock.")
WRONG_REGION = Refusal("invalid", "Credential should be scoped to a valid region.")


def wrong_service(service: str) -> Refusal:
    return Refusal("invalid", f"Credential should be scoped to correct service: '{service}'.")


class SignatureVerifier:
    """Checks requests against the functions' credentials (botocore credentials, re-read on every check so a
    refreshed key is honoured) and region; until the gateway has started there are none and every request is
    refused."""

    def __init__(self, max_skew_seconds: float = MAX_CLOCK_SKEW_SECONDS) -> None:
        self.credentials: Any = None
        self.region: str | None = None
        self.max_skew_seconds = max_skew_seconds

    def check(self, request: Request, body: bytes, service: str, now: datetime | None = None) -> Refusal | None:
        """None when the request is signed with the functions' credentials for `service` in their region; else
        why not. A signature for another service or region is refused as AWS refuses it: it would be accepted
        nowhere else."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        header = request.headers.get("authorization", "")
        match = AUTHORIZATION.match(header)
        if match is None or "x-amz-date" not in request.headers:
            return MISSING
        if self.credentials is None:
            return UNKNOWN_KEY
        credentials = self.credentials.get_frozen_credentials()
        if not hmac.compare_digest(match["key"], credentials.access_key):
            return UNKNOWN_KEY
        if credentials.token and not hmac.compare_digest(
            request.headers.get("x-amz-security-token", ""), credentials.token
        ):
            return UNKNOWN_KEY
        signed = match["signed"].split(";")
        if "host" not in signed or (credentials.token and "x-amz-security-token" not in signed):
            return MISMATCH
        amz_date = request.headers["x-amz-date"]
        try:
            at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return MISMATCH
        if abs(((now or datetime.now(UTC)) - at).total_seconds()) > self.max_skew_seconds:
            return EXPIRED
        if match["date"] != amz_date[:8]:
            return MISMATCH
        if match["service"] != service:
            return wrong_service(service)
        if match["region"] != self.region:
            return WRONG_REGION
        claimed_hash = request.headers.get("x-amz-content-sha256")
        if claimed_hash is not None and claimed_hash != sha256(body).hexdigest():
            return MISMATCH  # an unsigned or substituted body
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = f"http://{request.headers.get('host', '')}{raw_path.decode('latin-1')}" + (f"?{query}" if query else "")
        headers = {name: request.headers.get(name, "") for name in signed}
        received = AWSRequest(method=request.method, url=url, headers=headers, data=body)
        received.context["timestamp"] = amz_date
        auth = SigV4Auth(credentials, service, self.region)
        expected = auth.signature(auth.string_to_sign(received, auth.canonical_request(received)), received)
        return None if hmac.compare_digest(expected, match["signature"]) else MISMATCH


def is_loopback(request: Request) -> bool:
    """Whether the peer is this machine (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6)."""
    return is_loopback_address(request.client.host if request.client else "")
