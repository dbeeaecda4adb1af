"""The `Host` names the gateway answers to: anything else is refused (421) before any route runs.

A web page can point a name it controls at 127.0.0.1 (DNS rebinding): the browser then treats the gateway as
that page's own origin, sends `Origin` and `Host` with the attacker's name, and reads every answer. Only the
`Host` header tells such a request apart, so each request and each WebSocket upgrade, on the gateway's port and
on the embedded DynamoDB's, must name the gateway: localhost, 127.0.0.1, [::1], the address it is bound to (every
address of this machine when bound to all of them), or a name ALLOWED_HOSTS adds.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from local_gateway.logs import printable

logger = logging.getLogger("local_gateway")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
EVERY_ADDRESS = ("0.0.0.0", "::", "")  # a bind to all of this machine's addresses
# A host name or an IPv4 address, or an IPv6 address in brackets; then an optional port. Nothing else: a
# `user@host` or a space would read as one name to one parser and another to the next.
HOST_HEADER = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::\d{1,5})?")
NAME = re.compile(r"[A-Za-z0-9._-]+")
MISDIRECTED = "Misdirected Request: this gateway does not answer to that Host (ALLOWED_HOSTS adds names)"
MAX_NAMES_WARNED = 64  # the first refusal of a name is a WARNING, the next ones DEBUG: a flood writes no log


def host_name(header: str | None) -> str | None:
    """The name a `Host` header gives, lower-cased, without its port or brackets; None when it is no host."""
    match = HOST_HEADER.fullmatch(header or "")
    if match is None:
        return None
    return (match["v6"] or match["name"]).lower().removesuffix(".")


def parse_names(raw: str) -> tuple[str, ...] | None:
    """ALLOWED_HOSTS' names (commas between them; `*`: any); None when one is not a host name or address."""
    names = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item == "*":
            names.append(item)
            continue
        bare = item[1:-1] if item.startswith("[") and item.endswith("]") else item
        if not NAME.fullmatch(bare) and not _is_address(bare):
            return None
        names.append(bare.lower().removesuffix("."))
    return tuple(names)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def machine_addresses() -> list[str]:
    """Every address of this machine's interfaces (psutil, a runtime dependency): the names a client uses
    for a gateway bound to all of them."""
    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            text = address.address.split("%", 1)[0]  # an IPv6 link-local address's zone
            if _is_address(text):
                found.append(text)
    return found


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str]
    any_host: bool = False  # ALLOWED_HOSTS=*: the check is off

    @classmethod
    def of(cls, bound: str = "127.0.0.1", extra: Iterable[str] = ()) -> AllowedHosts:
        """The loopback names, the bound address (or this machine's addresses when bound to all), `extra`."""
        extra = tuple(extra)
        names = {*LOOPBACK_NAMES, *(name for name in extra if name != "*")}
        if bound.strip("[]") in EVERY_ADDRESS:
            names.update(machine_addresses())
        else:
            names.add(bound.strip("[]").lower())
        return cls(frozenset(names), "*" in extra)

    def allows(self, header: str | None) -> bool:
        return self.any_host or host_name(header) in self.names


class RefusalLog:
    """One WARNING per refused name (up to MAX_NAMES_WARNED names), DEBUG after: the developer who reaches the
    gateway by a new name learns why once, and a flood of requests writes nothing at INFO."""

    def __init__(self) -> None:
        self._warned: set[str] = set()

    def refused(self, where: str, header: str | None) -> None:
        shown = printable(header or "")
        if shown not in self._warned and len(self._warned) < MAX_NAMES_WARNED:
            self._warned.add(shown)
            logger.warning("%s refused Host %r: not a name of this gateway (ALLOWED_HOSTS adds names)", where, shown)
        else:
            logger.debug("%s refused Host %r", where, shown)


def checked_hosts(app: ASGIApp, allowed: AllowedHosts) -> ASGIApp:
    """Every HTTP request and WebSocket upgrade with a `Host` of the gateway's passed on; any other answered
    421 before anything else runs (a WebSocket's with the denial response, or a 403 where there is none)."""
    log = RefusalLog()

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        header = _host_header(scope)
        if allowed.allows(header):
            await app(scope, receive, send)
            return
        log.refused("gateway", header)
        response = PlainTextResponse(MISDIRECTED, status_code=421, headers={"connection": "close"})
        if scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
            await response(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})

    return call


def _host_header(scope: Scope) -> str | None:
    values = [value for name, value in scope.get("headers", []) if name == b"host"]
    if len(values) != 1:  # none, or two that two readers could each take one of
        return None
    return bytes(values[0]).decode("latin-1")
