from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Iterator

import pytest

from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_table
from local_gateway.template import template
from shared.clients import client_config
from shared.config import AuthSettings, Config
from shared.services import Services, reset_services, services
from tests.support.management_api import ManagementApiEndpoint
from tests.support.servers import RunningGateway
from tests.support.simulated_stack import SimulatedStack, simulated_stack
from tests.support.socketio_default import socketio_services
from tests.support.tokens import SECRET

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a load test first, then the rest by number of tests (what xdist's loadscope does by itself;
    `make test` turns that off so that this order holds): a long test handed out last keeps one worker busy
    after the others are done."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    ordered = sorted(
        modules.values(), key=lambda tests: (not any(t.get_closest_marker("load") for t in tests), -len(tests))
    )
    items[:] = [item for tests in ordered for item in tests]


@pytest.fixture(scope="session", autouse=True)
def fake_aws_credentials() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in [*FAKE_AWS, "AWS_PROFILE"]}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(FAKE_AWS)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def engine_errors() -> Iterator[list[logging.LogRecord]]:
    """Every test fails if the item engine met an exception it did not foresee: it logs it at ERROR and leaves the
    request to moto, so the answer alone would not show it (local_gateway/dynamodb/item_engine.py). A test that provokes
    one on purpose clears this list."""
    engine_logger = logging.getLogger("local_gateway.dynamodb.item_engine")
    handler = _Collected()
    engine_logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        engine_logger.removeHandler(handler)
    if handler.records:
        pytest.fail("the item engine failed: " + "; ".join(record.getMessage() for record in handler.records))


@pytest.fixture(scope="session")
def embedded_dynamodb() -> Iterator[EmbeddedDynamoDB]:
    """moto's DynamoDB, once per session, as the gateway embeds it but without its fast path: the handlers' unit
    tests run on moto alone, as the design card asks (the item engine is tested against moto in
    tests/test_item_engine.py, and the gateway's end-to-end tests embed their own, fast path on); each test gets a
    table of its own."""
    embedded = EmbeddedDynamoDB(fast_path=False)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="session")
def moto_endpoint(embedded_dynamodb: EmbeddedDynamoDB) -> str:
    """The embedded DynamoDB's HTTP port."""
    assert embedded_dynamodb.endpoint_url is not None
    return embedded_dynamodb.endpoint_url


@pytest.fixture(scope="session")
def cloudwatch_endpoint() -> Iterator[str]:
    """moto's server, for CloudWatch: the embedded DynamoDB's HTTP port serves DynamoDB alone."""
    from moto.server import ThreadedMotoServer

    from tests.support.servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def management_api() -> Iterator[ManagementApiEndpoint]:
    endpoint = ManagementApiEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def lambda_env(
    embedded_dynamodb: EmbeddedDynamoDB,
    moto_endpoint: str,
    management_api: ManagementApiEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Services]:
    """The environment template.yaml gives the functions, pointed at moto and a local Management API; the
    functions reach moto through the direct transport, as the gateway's do, with moto alone answering (no item engine:
    see embedded_dynamodb). A test marked `dynamodb_wire` gets the wire transport
    instead (local_gateway/dynamodb/moto_transports.py): faults injected at botocore's boundary need its send path."""
    monkeypatch.setenv("TABLE_NAME", f"analytics-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("CONNECTIONS_ENDPOINT_URL", management_api.url)
    monkeypatch.setenv("METRICS_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("PUBLISH_WINDOW_SECONDS", "0")
    monkeypatch.setenv("RECONCILE_SETTLE_SECONDS", "0")  # no request is in flight while a test reconciles
    monkeypatch.setenv("RECONCILE_INTERVAL_SECONDS", "0")  # and a test may start pass after pass
    config = Config.from_env()
    on_the_wire = request.node.get_closest_marker("dynamodb_wire") is not None
    transport = embedded_dynamodb.wire_client if on_the_wire else embedded_dynamodb.client
    reset_services(Services.from_config(config, dynamodb=transport(client_config())))
    svc = services()
    ensure_table(svc.table.client, svc.config.table_name, template())
    yield svc
    reset_services()


@pytest.fixture
def socketio_svc(
    lambda_env: Services, monkeypatch: pytest.MonkeyPatch, management_api: ManagementApiEndpoint
) -> Services:
    """lambda_env as Socket.IO at `$default` needs it (tests/support/socketio_default.py): the open-packet function's
    invocations recorded, the CONNECT answers read from this test's Management API."""
    return socketio_services(lambda_env, monkeypatch, management_api)


@pytest.fixture
def socketio_hs256(socketio_svc: Services, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The same, with HS256 tokens required (signed with tests/support/tokens.py's SECRET)."""
    auth = AuthSettings(jwt_secret=SECRET)
    monkeypatch.setattr(socketio_svc, "config", dataclasses.replace(socketio_svc.config, auth=auth))
    return socketio_svc


@pytest.fixture
def simulated(moto_endpoint: str, management_api: ManagementApiEndpoint) -> Iterator[SimulatedStack]:
    """The stack of template.yaml simulated (tests/support/simulated_stack.py), deployed with the template's
    defaults."""
    yield simulated_stack(moto_endpoint, management_api)
    reset_services()


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    """A real gateway on a free port, pushing every 0.5 s, with its embedded DynamoDB."""
    running = RunningGateway(METRICS_INTERVAL_SECONDS="0.5").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine_dynamodb() -> EmbeddedDynamoDB:
    """moto's DynamoDB with its item engine, one per test module; the engine's counts say which requests it answered."""
    return EmbeddedDynamoDB()
