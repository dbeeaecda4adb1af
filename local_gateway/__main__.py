"""`python -m local_gateway`: the development gateway on HOST:PORT (default 127.0.0.1:4000)."""

from __future__ import annotations

import sys

import uvicorn

from local_gateway.app import Gateway
from local_gateway.logs import configure_logging
from local_gateway.settings import GatewaySettings
from shared.config import ConfigError


def main() -> None:
    configure_logging()
    try:
        settings = GatewaySettings.from_env()
    except ConfigError as error:  # one clear line, not a traceback
        print(f"local_gateway: bad configuration: {error}", file=sys.stderr)
        sys.exit(2)
    gateway = Gateway(settings)
    # log_config=None: uvicorn's lines go through our handler and its query-string filter.
    uvicorn.run(
        gateway.app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        log_config=None,
        server_header=False,  # what serves the gateway is nobody else's business
        timeout_graceful_shutdown=5,  # Ctrl-C ends within seconds whatever clients do
    )


if __name__ == "__main__":
    main()
