"""`python -m local_gateway`: the development gateway on HOST:PORT (default 127.0.0.1:4000)."""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import NoReturn

import uvicorn

from local_gateway import cpu_affinity
from local_gateway.app import Gateway
from local_gateway.dynamodb.embedded import DynamoDBUnreachable
from local_gateway.logs import configure_logging
from local_gateway.serving import ensure_file_budget, server_config
from local_gateway.settings import GatewaySettings
from shared.env_values import ConfigError


def fail(message: str, status: int) -> NoReturn:
    """One clear line and a non-zero exit, not a traceback."""
    print(f"local_gateway: {message}", file=sys.stderr)
    sys.exit(status)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says the gateway is on (uvicorn would bind after start-up)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}", 1)
    sock.set_inheritable(True)
    return sock


def main() -> None:
    configure_logging()
    try:
        settings = GatewaySettings.from_env()
        gateway = Gateway(settings)
        gateway.environment.check()  # the functions' settings, and the DynamoDB they name, before serving
    except ConfigError as error:
        fail(f"bad configuration: {error}", 2)
    except DynamoDBUnreachable as error:
        fail(str(error), 1)
    listening = bind(settings.host, settings.port)
    ensure_file_budget(settings)
    cpu_affinity.apply(settings.cpu)  # before the server starts, so that every thread it starts shares it
    server = uvicorn.Server(server_config(gateway.app, settings))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has shut down, as uvicorn.run
        server.run(sockets=[listening])
    if not server.started:
        sys.exit(3)  # start-up failed (uvicorn.run's status): its error is logged


if __name__ == "__main__":
    main()
