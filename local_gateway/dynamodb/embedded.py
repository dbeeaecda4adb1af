"""DynamoDB for development: moto in-process, or the endpoint DYNAMODB_ENDPOINT_URL names.

The embedded DynamoDB is moto's backend with three ways onto the same tables: the functions' client hands its
requests to moto in this process (no socket, no HTTP server: local_gateway/dynamodb/moto_transports.py), and moto's HTTP
server listens on loopback for outside tools (the AWS CLI, NoSQL Workbench, a test's own boto3 client).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from typing import TYPE_CHECKING, Any

from local_gateway.dynamodb.http_port import MAX_CLIENTS, POLL_SECONDS, REQUEST_SECONDS, http_server
from local_gateway.dynamodb.item_engine import ItemEngine
from local_gateway.dynamodb.moto_items import stop_tracking_instances
from local_gateway.dynamodb.moto_transports import install_direct_transport, install_wire_transport
from local_gateway.hosts import AllowedHosts
from local_gateway.template import Template

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

logger = logging.getLogger(__name__)

# moto and DynamoDB Local accept any credentials; boto3 insists that some exist. The gateway's Management and
# Invoke APIs accept only requests signed with these, so the secret is drawn afresh by each gateway process
# (DynamoDB Local keys its data by the access key id alone, which stays fixed).
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(32),
    "AWS_DEFAULT_REGION": "us-east-1",
}


def ensure_local_credentials() -> None:
    for name, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)


class EmbeddedDynamoDB:
    """moto's DynamoDB, one request at a time whichever way it comes in (http_port._serialized).

    The HTTP port is moto's DynamoDB app on a free loopback port, behind the checks of
    local_gateway/dynamodb/http_port.py: built from moto's public server pieces and werkzeug's public server API
    rather than ThreadedMotoServer, whose WSGI app could only be wrapped by reaching into its private attributes.
    The in-process transports (local_gateway/dynamodb/moto_transports.py) are installed in the clients this object
    hands out, never in boto3 at large.
    """

    def __init__(
        self,
        allowed_hosts: AllowedHosts | None = None,
        request_seconds: float = REQUEST_SECONDS,
        max_clients: int = MAX_CLIENTS,
        fast_path: bool = True,
    ) -> None:
        self.allowed_hosts = allowed_hosts or AllowedHosts.of()  # the HTTP port's Host names
        self.request_seconds = request_seconds
        self.max_clients = max_clients
        # The direct transport's item engine, first for the item reads and writes it answers; off: moto answers all.
        self.fast_path = fast_path
        # Shared by every direct-transport client of this DynamoDB; its counts say what it answered and what moto did.
        self.item_engine = ItemEngine() if fast_path else None
        self.endpoint_url: str | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()  # held while moto serves a request, whichever way it came in
        self._session: Any = None
        self._session_lock = threading.Lock()  # a boto3 session is not safe to create clients from concurrently

    def client(self, config: Any = None) -> Any:
        """A DynamoDB client whose every request moto serves in this process through the direct transport
        (see local_gateway/dynamodb/moto_transports.py), from the same tables as the HTTP port."""
        client = self._unopened_client(config)
        install_direct_transport(client, self.lock, self.item_engine)
        return client

    def wire_client(self, config: Any = None) -> Any:
        """The same, through botocore's whole send path (signing, `before-send` hooks, retries): the client a
        test injects faults into at botocore's boundary (tests/faults.py)."""
        client = self._unopened_client(config)
        install_wire_transport(client, self.lock)
        return client

    def _unopened_client(self, config: Any) -> Any:
        import boto3

        stop_tracking_instances()
        # One session for every client handed out: it loads DynamoDB's service model once (a new session took
        # 0.1 to 0.2 s a client, which the tests paid for each table). Each client keeps its own event hooks;
        # the session resolves credentials once, when its first client is made.
        with self._session_lock:
            if self._session is None:
                self._session = boto3.session.Session()
            # No endpoint_url: the client keeps AWS's own name for DynamoDB, which is what moto's botocore hook
            # recognises; either transport answers before any connection is made.
            return self._session.client("dynamodb", config=config)

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("already started")
        # Bound (port 0: a free one) before it returns, so the port is known before any request.
        server = http_server(self.lock, self.allowed_hosts, self.request_seconds, self.max_clients)
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_SECONDS,), name="moto-dynamodb", daemon=True
        )
        self._thread.start()
        self._server = server
        self.endpoint_url = f"http://127.0.0.1:{server.server_port}"
        return self.endpoint_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class DynamoDBUnreachable(Exception):
    """The DynamoDB endpoint did not answer; the message says so in one line."""


def quick_client(endpoint_url: str | None, timeout_seconds: float = 2.0) -> Any:
    """A client for checks: short timeouts and a single attempt, where the functions' clients retry for long."""
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(
        connect_timeout=timeout_seconds, read_timeout=timeout_seconds, retries={"total_max_attempts": 1}
    )
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url, config=config)


def reachable(endpoint_url: str, timeout_seconds: float = 2.0) -> None:
    """DynamoDBUnreachable unless the endpoint answers a ListTables within the timeout."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        quick_client(endpoint_url, timeout_seconds).list_tables(Limit=1)
    except ClientError as error:  # something answered, and not as DynamoDB does
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        code = error.response.get("Error", {}).get("Code", "")
        raise DynamoDBUnreachable(
            f"DynamoDB at {endpoint_url} answered ListTables with {status} {code}: is it DynamoDB?".rstrip()
        ) from None
    except BotoCoreError as error:
        raise DynamoDBUnreachable(f"DynamoDB at {endpoint_url} does not answer ({type(error).__name__})") from None


def ensure_table(client: Any, table_name: str, template: Template) -> bool:
    """Create the template's table under this name unless it exists; True when created."""
    if any(table_name in page["TableNames"] for page in client.get_paginator("list_tables").paginate()):
        return False  # ListTables answers at most 100 names a page: every page is read
    client.create_table(TableName=table_name, **template.table_definition())
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.2})
    ttl = template.ttl_attribute()
    if ttl:
        client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )
    logger.info("created table %s", table_name)
    return True
