"""DynamoDB for development: moto's server in-process, or the endpoint DYNAMODB_ENDPOINT_URL names."""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

from local_gateway.template import Template

logger = logging.getLogger(__name__)

# moto and DynamoDB Local accept any credentials; boto3 insists that some exist.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def ensure_local_credentials() -> None:
    for name, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)


class EmbeddedDynamoDB:
    """moto's ThreadedMotoServer on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url: str | None = None

    def start(self) -> str:
        self._server.start()
        wsgi = self._server._server
        wsgi.app = _serialized(wsgi.app)
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        self._server.stop()


def _serialized(app: Any) -> Any:
    """One request at a time. moto runs a TransactWriteItems by deep-copying the table and restores that copy
    when the transaction is cancelled, silently undoing whatever another thread wrote meanwhile (and the copy
    itself can fail with "dictionary changed size during iteration"). The GIL serialized moto's work anyway.
    Found by the 200-client test in tests/test_gateway_resilience.py.
    """
    lock = threading.Lock()

    def call(environ: Any, start_response: Any) -> Any:
        with lock:
            return list(app(environ, start_response))

    return call


def ensure_table(client: Any, table_name: str, template: Template) -> bool:
    """Create the template's table under this name unless it exists; True when created."""
    if table_name in client.list_tables()["TableNames"]:
        return False
    client.create_table(TableName=table_name, **template.table_definition())
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.2})
    ttl = template.ttl_attribute()
    if ttl:
        client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )
    logger.info("created table %s", table_name)
    return True
