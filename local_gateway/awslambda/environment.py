"""What the handlers get locally: their configuration, built here and passed in, and a DynamoDB with the
template's table. The process environment is read; the one thing written to it is local AWS credentials and a
region where it has none (ensure_local_credentials: boto3's chain finds them there for every client)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_local_credentials, ensure_table, reachable
from local_gateway.hosts import AllowedHosts
from local_gateway.template import Template, stage_name
from shared import config as names
from shared.clients import client_config, dynamodb_client
from shared.config import Config

logger = logging.getLogger(__name__)

DEFAULT_TABLE_NAME = "analytics-local"
FANOUT_WORKER = "FanoutWorkerFunction"
SOCKETIO_OPEN = "SocketIOOpenFunction"


class LocalEnvironment:
    def __init__(
        self,
        template: Template,
        public_url: str,
        environ: Mapping[str, str],
        dynamodb_hosts: AllowedHosts | None = None,
        fast_path: bool = True,
    ) -> None:
        self.template = template
        self.public_url = public_url
        self.environ = environ
        self.dynamodb_hosts = dynamodb_hosts  # the Host names the embedded DynamoDB's HTTP port answers to
        self.fast_path = fast_path  # the embedded DynamoDB's item engine (EMBEDDED_DYNAMODB_FAST_PATH)
        self.embedded: EmbeddedDynamoDB | None = None
        self.config: Config | None = None
        self.dynamodb: Any = None  # the functions' DynamoDB client

    def functions_config(self) -> Config:
        """The functions' settings as the environment gives them (the table defaulted); ConfigError if bad."""
        table_name = self.environ.get(names.TABLE_NAME, "").strip() or DEFAULT_TABLE_NAME
        return Config.from_env({**self.environ, names.TABLE_NAME: table_name})

    def check(self) -> None:
        """Before serving: the functions' settings read (ConfigError), and the DynamoDB DYNAMODB_ENDPOINT_URL
        names answering (DynamoDBUnreachable); the embedded one is the gateway's own."""
        config = self.functions_config()
        if config.dynamodb_endpoint_url is not None:
            ensure_local_credentials()
            reachable(config.dynamodb_endpoint_url)

    def start(self) -> Config:
        """The handlers' configuration: the environment's, with the gateway standing in for AWS."""
        ensure_local_credentials()
        config = self.functions_config()
        endpoint = config.dynamodb_endpoint_url
        if endpoint is None:
            self.embedded = EmbeddedDynamoDB(self.dynamodb_hosts, fast_path=self.fast_path)
            endpoint = self.embedded.start()
        functions = self.template.functions()
        config = dataclasses.replace(
            config,
            dynamodb_endpoint_url=endpoint,
            # The handlers post back through the gateway itself, and the gateway is their clock: one tick a call.
            connections_endpoint_url=f"{self.public_url}/{stage_name(self.template)}",  # AWS's shape: the stage
            publish_window_seconds=0.0,
            # Other functions are invoked through the gateway's own Lambda Invoke API, as in AWS.
            lambda_endpoint_url=self.public_url,
            fanout_worker_function=config.fanout_worker_function
            or (FANOUT_WORKER if FANOUT_WORKER in functions else None),
            open_function=config.open_function or (SOCKETIO_OPEN if SOCKETIO_OPEN in functions else None),
        )
        # Embedded: the functions reach moto in-process; its HTTP endpoint (in their configuration) is for others.
        self.dynamodb = self.embedded.client(client_config()) if self.embedded else dynamodb_client(config)
        ensure_table(self.dynamodb, config.table_name, self.template)
        self.config = config
        return config

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        self.dynamodb = None

    def describe_dynamodb(self) -> str:
        """For the gateway's own log: where its DynamoDB is."""
        endpoint = self.config.dynamodb_endpoint_url if self.config else ""
        return f"embedded moto (in-process; for other tools at {endpoint})" if self.embedded else str(endpoint)

    def dynamodb_kind(self) -> str:
        """For /health: which DynamoDB, without its address."""
        return "embedded moto" if self.embedded else "external endpoint"
