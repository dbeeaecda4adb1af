"""`python -m local_gateway`: the development gateway on HOST:PORT (default 127.0.0.1:4000)."""

from __future__ import annotations

import uvicorn

from local_gateway.app import Gateway
from local_gateway.logs import configure_logging
from local_gateway.settings import GatewaySettings


def main() -> None:
    configure_logging()
    settings = GatewaySettings.from_env()
    gateway = Gateway(settings)
    # log_config=None: uvicorn's lines go through our handler and its query-string filter.
    uvicorn.run(
        gateway.app, host=settings.host, port=settings.port, log_level="info", access_log=False, log_config=None
    )


if __name__ == "__main__":
    main()
