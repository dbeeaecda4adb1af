"""`python -m local_gateway`: the development gateway on HOST:PORT (default 127.0.0.1:4000)."""

from __future__ import annotations

import logging

import uvicorn

from local_gateway.app import Gateway
from local_gateway.settings import GatewaySettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = GatewaySettings.from_env()
    gateway = Gateway(settings)
    uvicorn.run(gateway.app, host=settings.host, port=settings.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
