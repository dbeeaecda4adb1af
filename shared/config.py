"""The one place configuration is read: every setting comes from the environment."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TABLE_NAME = "TABLE_NAME"
CONNECTIONS_ENDPOINT_URL = "CONNECTIONS_ENDPOINT_URL"
METRICS_INTERVAL_SECONDS = "METRICS_INTERVAL_SECONDS"
PUBLISH_WINDOW_SECONDS = "PUBLISH_WINDOW_SECONDS"
DYNAMODB_ENDPOINT_URL = "DYNAMODB_ENDPOINT_URL"
MAX_ROOMS_PER_CONNECTION = "MAX_ROOMS_PER_CONNECTION"
PORT = "PORT"
HOST = "HOST"
CORS_ALLOWED_ORIGINS = "CORS_ALLOWED_ORIGINS"


class ConfigError(Exception):
    """A required setting is missing or malformed."""


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name, "").strip() or None


@dataclass(frozen=True)
class Config:
    table_name: str
    connections_endpoint_url: str | None
    metrics_interval_seconds: float
    publish_window_seconds: float
    dynamodb_endpoint_url: str | None
    max_rooms_per_connection: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        environ = os.environ if environ is None else environ
        table_name = _optional(environ, TABLE_NAME)
        if table_name is None:
            raise ConfigError(f"{TABLE_NAME} is required: the DynamoDB table that holds the state")
        return cls(
            table_name=table_name,
            connections_endpoint_url=_optional(environ, CONNECTIONS_ENDPOINT_URL),
            metrics_interval_seconds=_number(environ, METRICS_INTERVAL_SECONDS, 5.0, 0.05),
            publish_window_seconds=_number(environ, PUBLISH_WINDOW_SECONDS, 60.0, 0.0),
            dynamodb_endpoint_url=_optional(environ, DYNAMODB_ENDPOINT_URL),
            max_rooms_per_connection=int(_number(environ, MAX_ROOMS_PER_CONNECTION, 20, 1)),
        )


@dataclass(frozen=True)
class GatewaySettings:
    """Settings of the local gateway alone (the deployed stack has no use for them)."""

    host: str
    port: int
    cors_allowed_origins: str | list[str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        environ = os.environ if environ is None else environ
        origins = _optional(environ, CORS_ALLOWED_ORIGINS) or "*"
        return cls(
            host=_optional(environ, HOST) or "0.0.0.0",
            port=int(_number(environ, PORT, 4000, 0)),
            cors_allowed_origins="*" if origins == "*" else [o.strip() for o in origins.split(",") if o.strip()],
        )
