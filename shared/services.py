"""The collaborators every handler uses, built once per process on first use (never at import)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from shared.config import Config
from shared.poster import ManagementApiPoster, Poster
from shared.store import Store

RETRIES = {"max_attempts": 5, "mode": "standard"}  # backoff for throttling and 5xx, by botocore


def _client_config(pool: int = 50) -> Any:
    from botocore.config import Config as BotoConfig

    return BotoConfig(retries=RETRIES, max_pool_connections=pool, connect_timeout=3, read_timeout=10)


def dynamodb_client(config: Config) -> Any:
    import boto3

    return boto3.session.Session().client(
        "dynamodb", endpoint_url=config.dynamodb_endpoint_url, config=_client_config()
    )


def management_api_poster(endpoint_url: str) -> Poster:
    import boto3

    client = boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=endpoint_url, config=_client_config()
    )
    return ManagementApiPoster(client)


@dataclass
class Services:
    config: Config
    store: Store
    poster_factory: Callable[[str], Poster] = management_api_poster
    _posters: dict[str, Poster] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> Services:
        config = Config.from_env()
        return cls(config=config, store=Store(dynamodb_client(config), config.table_name))

    def poster(self, implied_endpoint: str | None = None) -> Poster:
        """The poster for CONNECTIONS_ENDPOINT_URL, or for the endpoint the request context implies."""
        endpoint = self.config.connections_endpoint_url or implied_endpoint
        if endpoint is None:
            raise RuntimeError("CONNECTIONS_ENDPOINT_URL is not set and the event implies no endpoint")
        with self._lock:
            if endpoint not in self._posters:
                self._posters[endpoint] = self.poster_factory(endpoint)
            return self._posters[endpoint]


_current: Services | None = None
_current_lock = threading.Lock()


def services() -> Services:
    global _current
    with _current_lock:
        if _current is None:
            _current = Services.from_env()
        return _current


def reset_services(replacement: Services | None = None) -> None:
    """Forget the cached collaborators (tests, or a gateway that changed the environment)."""
    global _current
    with _current_lock:
        _current = replacement
