"""The local gateway's own settings (the deployed stack has no use for them), read from the environment."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from local_gateway.cpu_affinity import GATEWAY_CPU, read_choice
from local_gateway.hosts import parse_names
from shared.contract import IDLE_TIMEOUT_SECONDS, MAX_CONNECTION_SECONDS
from shared.env_values import ConfigError, read_number, read_optional

PORT = "PORT"
HOST = "HOST"
CORS_ALLOWED_ORIGINS = "CORS_ALLOWED_ORIGINS"
LOCAL_POSTER = "LOCAL_POSTER"
INPROCESS, HTTP = "inprocess", "http"
LOCAL_POSTERS = (INPROCESS, HTTP)
EVENT_BACKLOG = "EVENT_BACKLOG"
APIGW_IDLE_TIMEOUT_SECONDS = "APIGW_IDLE_TIMEOUT_SECONDS"
APIGW_MAX_CONNECTION_SECONDS = "APIGW_MAX_CONNECTION_SECONDS"
MAX_CONNECTIONS_PER_ADDRESS = "MAX_CONNECTIONS_PER_ADDRESS"
SOCKETIO_CONNECT_TIMEOUT_SECONDS = "SOCKETIO_CONNECT_TIMEOUT_SECONDS"
EMBEDDED_DYNAMODB_FAST_PATH = "EMBEDDED_DYNAMODB_FAST_PATH"
SWITCH = {"on": True, "off": False}
CONNECT_TIMEOUT_SECONDS = 45.0  # Socket.IO's connectTimeout
# The edges (docs/security.md): the Host names served beyond this machine's own, the proxies whose
# X-Forwarded-For is believed, the open connections of every kind at once, and how long a client has to send a
# whole request.
ALLOWED_HOSTS = "ALLOWED_HOSTS"
TRUSTED_PROXIES = "TRUSTED_PROXIES"
MAX_CONNECTIONS = "MAX_CONNECTIONS"
REQUEST_TIMEOUT_SECONDS = "REQUEST_TIMEOUT_SECONDS"


def _fast_path(environ: Mapping[str, str]) -> bool:
    value = (read_optional(environ, EMBEDDED_DYNAMODB_FAST_PATH) or "on").lower()
    if value not in SWITCH:
        raise ConfigError(f"{EMBEDDED_DYNAMODB_FAST_PATH} must be on or off, got {value!r}")
    return SWITCH[value]


def _origins(raw: str) -> str | list[str]:
    """`*`, or origins as a browser sends them (`scheme://host[:port]`, nothing more); else one clear line."""
    if raw.strip() == "*":
        return "*"
    origins = [origin.strip() for origin in raw.split(",") if origin.strip()]
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
            raise ConfigError(f"{CORS_ALLOWED_ORIGINS} takes origins such as https://app.example:8443, got {origin!r}")
    return origins


def _port(environ: Mapping[str, str]) -> int:
    port = read_number(environ, PORT, 4000, 1)
    if not float(port).is_integer() or port > 65535:
        raise ConfigError(f"{PORT} must be a whole number from 1 to 65535, got {environ.get(PORT)!r}")
    return int(port)


def _allowed_hosts(environ: Mapping[str, str]) -> tuple[str, ...]:
    names = parse_names(environ.get(ALLOWED_HOSTS, ""))
    if names is None:
        raise ConfigError(
            f"{ALLOWED_HOSTS} must be host names or addresses separated by commas, without ports, "
            f"got {environ.get(ALLOWED_HOSTS)!r}"
        )
    return names


def _trusted_proxies(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Addresses or networks (`10.0.0.0/8`), as uvicorn's forwarded_allow_ips takes them."""
    proxies = tuple(part.strip() for part in environ.get(TRUSTED_PROXIES, "").split(",") if part.strip())
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"{TRUSTED_PROXIES} must be IP addresses or networks separated by commas, "
                f"got {environ.get(TRUSTED_PROXIES)!r}"
            ) from None
    return proxies


@dataclass(frozen=True)
class GatewaySettings:
    """Settings of the local gateway alone (the deployed stack has no use for them)."""

    host: str
    port: int
    cors_allowed_origins: str | list[str]  # beyond this machine's pages (origins.py); "*": every origin
    # inprocess: emit straight to the sockets; http: the fan-out engine AWS uses (SignedPoster, SigV4 over
    # keep-alive HTTP, via management_api_poster) to the gateway's own /@connections, in plain HTTP.
    local_poster: str = LOCAL_POSTERS[0]
    idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS  # the /{stage} endpoint, as API Gateway
    max_connection_seconds: float = MAX_CONNECTION_SECONDS
    # Socket.IO events of one connection waiting behind the one running; beyond: "Too many requests".
    event_backlog: int = 16
    # Open connections one client address may hold, Socket.IO and /{stage} together; beyond: refused.
    max_connections_per_address: int = 1000
    # An Engine.IO session without a Socket.IO connection is closed after this long (Socket.IO's connectTimeout).
    socketio_connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS
    # The embedded DynamoDB's item engine (docs/embedded-dynamodb.md); off: moto answers every request itself.
    embedded_dynamodb_fast_path: bool = True
    # Host names beyond localhost, 127.0.0.1, [::1] and the bound address; "*": any (hosts.py).
    allowed_hosts: tuple[str, ...] = ()
    # Peers whose X-Forwarded-For names the client; none: the peer is the client, whatever it claims.
    trusted_proxies: tuple[str, ...] = ()
    # Open connections of every kind and every address at once (sockets, so files); beyond, closed at once.
    max_connections: int = 5000
    # A client's time for a whole request, head and body (and before its first byte); beyond, it is closed.
    request_timeout_seconds: float = 10.0
    # The CPU every thread runs on (local_gateway/cpu_affinity.py): "one" (where it starts), "any", or a number.
    cpu: str | int = "one"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        environ = os.environ if environ is None else environ
        origins = read_optional(environ, CORS_ALLOWED_ORIGINS) or ""
        poster = (read_optional(environ, LOCAL_POSTER) or LOCAL_POSTERS[0]).lower()
        if poster not in LOCAL_POSTERS:
            raise ConfigError(f"{LOCAL_POSTER} must be one of {', '.join(LOCAL_POSTERS)}, got {poster!r}")
        return cls(
            host=read_optional(environ, HOST) or "127.0.0.1",  # this machine only, as sam local
            port=_port(environ),
            cors_allowed_origins=_origins(origins),
            local_poster=poster,
            idle_timeout_seconds=read_number(environ, APIGW_IDLE_TIMEOUT_SECONDS, IDLE_TIMEOUT_SECONDS, 0.1),
            max_connection_seconds=read_number(environ, APIGW_MAX_CONNECTION_SECONDS, MAX_CONNECTION_SECONDS, 0.1),
            event_backlog=int(read_number(environ, EVENT_BACKLOG, 16, 1)),
            max_connections_per_address=int(read_number(environ, MAX_CONNECTIONS_PER_ADDRESS, 1000, 1)),
            socketio_connect_timeout_seconds=read_number(
                environ, SOCKETIO_CONNECT_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS, 0.1
            ),
            embedded_dynamodb_fast_path=_fast_path(environ),
            allowed_hosts=_allowed_hosts(environ),
            trusted_proxies=_trusted_proxies(environ),
            max_connections=int(read_number(environ, MAX_CONNECTIONS, 5000, 1)),
            request_timeout_seconds=read_number(environ, REQUEST_TIMEOUT_SECONDS, 10.0, 0.1),
            cpu=read_choice(read_optional(environ, GATEWAY_CPU)),
        )
