"""One setting read from the environment and checked: a missing or malformed value is a ConfigError that names
the variable, never a traceback from whatever would have used it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A required setting is missing or malformed."""


def read_number(
    environ: Mapping[str, str], name: str, default: float, minimum: float, maximum: float = math.inf
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):  # float() reads "nan" and "inf" too
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g}, got {raw!r}")
    return value


def read_count(environ: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    """A whole number from 1 to `maximum`."""
    value = read_number(environ, name, default, 1)
    if value != int(value) or value > maximum:
        raise ConfigError(f"{name} must be a whole number from 1 to {maximum}, got {environ.get(name)!r}")
    return int(value)


def read_switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off"):
        raise ConfigError(f"{name} must be on or off, got {raw!r}")
    return raw == "on"


def read_url(environ: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL with a host, or None when unset; anything else is one clear line, not a botocore traceback."""
    raw = read_optional(environ, name)
    if raw is None:
        return None
    parsed = urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw


def read_optional(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name, "").strip() or None
