"""The environment the handlers see locally: their variables, and a DynamoDB with the template's table."""
from __future__ import annotations

import logging
import os

from local_gateway.dynamodb import EmbeddedDynamoDB, ensure_local_credentials, ensure_table
from local_gateway.template import Template
from shared import config as names
from shared.config import Config
from shared.services import dynamodb_client, reset_services

logger = logging.getLogger(__name__)

DEFAULT_TABLE_NAME = "analytics-local"
FANOUT_WORKER = "FanoutWorkerFunction"
SOCKETIO_OPEN = "SocketIOOpenFunction"


class LocalEnvironment:
    def __init__(self, template: Template, public_url: str) -> None:
        self.template = template
        self.public_url = public_url
        self.embedded: EmbeddedDynamoDB | None = None
        self._saved: dict[str, str | None] = {}

    def _set(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def start(self) -> Config:
        ensure_local_credentials()
        if not os.environ.get(names.DYNAMODB_ENDPOINT_URL):
            self.embedded = EmbeddedDynamoDB()
            self._set(names.DYNAMODB_ENDPOINT_URL, self.embedded.start())
        if not os.environ.get(names.TABLE_NAME):
            self._set(names.TABLE_NAME, DEFAULT_TABLE_NAME)
        # The handlers post back through the gateway itself, and the gateway is their clock: one tick a call.
        self._set(names.CONNECTIONS_ENDPOINT_URL, self.public_url)
        self._set(names.PUBLISH_WINDOW_SECONDS, "0")
        # Fan-out workers are invoked through the gateway's own Lambda Invoke API, as in AWS.
        self._set(names.LAMBDA_ENDPOINT_URL, self.public_url)
        if FANOUT_WORKER in self.template.functions() and not os.environ.get(names.FANOUT_WORKER_FUNCTION):
            self._set(names.FANOUT_WORKER_FUNCTION, FANOUT_WORKER)
        if SOCKETIO_OPEN in self.template.functions() and not os.environ.get(names.SOCKETIO_OPEN_FUNCTION):
            self._set(names.SOCKETIO_OPEN_FUNCTION, SOCKETIO_OPEN)
        reset_services()
        config = Config.from_env()
        ensure_table(dynamodb_client(config), config.table_name, self.template)
        return config

    def stop(self) -> None:
        reset_services()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()

    def describe_dynamodb(self) -> str:
        endpoint = os.environ.get(names.DYNAMODB_ENDPOINT_URL, "")
        return f"embedded moto at {endpoint}" if self.embedded else endpoint
