"""SigV4 signing of `{endpoint}/@connections/{id}` requests, precomputed per endpoint for the fan-out engine."""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class SigV4Signer:
    """SigV4 for `POST {endpoint}/@connections/{id}` (or another method), byte-for-byte what botocore's SigV4Auth
    produces for it.

    SigV4Auth rebuilds everything per request: it parses the URL twice, builds header maps, hashes the body
    and derives the signing key with four HMACs. Here the host, the canonical path prefix and the credential
    scope are computed once per endpoint, the key once per (secret, day), and the payload hash once per
    fan-out, so a signature is one SHA-256 of a short canonical request and one HMAC.
    """

    def __init__(self, endpoint_url: str, service: str, region: str) -> None:
        from botocore.utils import normalize_url_path

        parts = urlsplit(endpoint_url.rstrip("/"))
        self.scheme = parts.scheme
        self.hostname = parts.hostname or ""
        self.port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
        # The Host header SigV4Auth signs: lowercase, IPv6 bracketed, the port only when not the default.
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        self.host = host if parts.port in (None, DEFAULT_PORTS.get(parts.scheme)) else f"{host}:{parts.port}"
        self.path_prefix = f"{parts.path}/@connections/"
        self._normalize = normalize_url_path
        # Non-S3 SigV4 quotes the (already quoted) path again: '@' becomes %40, '%3D' becomes %253D.
        self.canonical_prefix = quote(normalize_url_path(self.path_prefix), safe="/~")
        self.scope_tail = f"/{region}/{service}/aws4_request"
        self.region, self.service = region, service
        self._key: tuple[str, str, bytes] = ("", "", b"")

    def path(self, connection_id: str) -> str:
        return self.path_prefix + quote(connection_id, safe="")

    def canonical_path(self, path: str) -> str:
        segment = path[len(self.path_prefix) :]
        if segment.strip(".") == "":
            # '', '.' and '..' are what path normalization would rewrite: take botocore's slow road.
            return quote(self._normalize(path), safe="/~")
        return self.canonical_prefix + quote(segment, safe="/~")

    def signing_key(self, secret_key: str, datestamp: str) -> bytes:
        cached_secret, cached_date, key = self._key
        if cached_secret != secret_key or cached_date != datestamp:
            key = _hmac(f"AWS4{secret_key}".encode(), datestamp)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._key = (secret_key, datestamp, key)  # one tuple: a concurrent reader sees old or new, never half
        return key

    def headers(self, path: str, payload_hash: str, credentials: Any, amz_date: str, method: str = "POST") -> str:
        """The X-Amz-Date, X-Amz-Security-Token and Authorization header lines (CRLF-terminated) for one request."""
        token = credentials.token
        if token:
            signed = "host;x-amz-date;x-amz-security-token"
            canonical_headers = (
                f"host:{self.host}\nx-amz-date:{amz_date}\nx-amz-security-token:{' '.join(token.split())}\n"
            )
            token_line = f"X-Amz-Security-Token: {token}\r\n"
        else:
            signed = "host;x-amz-date"
            canonical_headers = f"host:{self.host}\nx-amz-date:{amz_date}\n"
            token_line = ""
        canonical_request = f"{method}\n{self.canonical_path(path)}\n\n{canonical_headers}\n{signed}\n{payload_hash}"
        datestamp = amz_date[:8]
        scope = datestamp + self.scope_tail
        string_to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{sha256(canonical_request.encode()).hexdigest()}"
        signature = hmac.new(
            self.signing_key(credentials.secret_key, datestamp), string_to_sign.encode(), sha256
        ).hexdigest()
        return (
            f"X-Amz-Date: {amz_date}\r\n{token_line}Authorization: AWS4-HMAC-SHA256 "
            f"Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}\r\n"
        )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), sha256).digest()
