"""Test helpers, by concern; every name test modules import from `tests.support` is re-exported here."""

from __future__ import annotations

from tests.support.cloudwatch import cloudwatch_metrics
from tests.support.contract import ASYNCAPI, ASYNCAPI_URI, ContractValidator, asyncapi_document, contract_validator
from tests.support.dynamodb import as_dynamodb_lists_them, connection_rooms
from tests.support.events import EVENTS, connect_event, disconnect_event, load_event, message_event
from tests.support.management_api import ManagementApiEndpoint
from tests.support.servers import (
    SERVER_POLL_SECONDS,
    BackloggedHTTPServer,
    GatewayProcess,
    LambdaEndpoint,
    RunningGateway,
    engineio_session,
    first_line,
    free_port,
    http_status,
    invoke_function,
    polling_session,
    replaced_routes,
    running_gateway,
    until,
    upgrade_request,
    wait_for_health,
)
from tests.support.tokens import SECRET, signed_request, token

__all__ = [
    "ASYNCAPI",
    "ASYNCAPI_URI",
    "EVENTS",
    "SECRET",
    "SERVER_POLL_SECONDS",
    "BackloggedHTTPServer",
    "ContractValidator",
    "GatewayProcess",
    "LambdaEndpoint",
    "ManagementApiEndpoint",
    "RunningGateway",
    "as_dynamodb_lists_them",
    "asyncapi_document",
    "cloudwatch_metrics",
    "connect_event",
    "connection_rooms",
    "contract_validator",
    "disconnect_event",
    "engineio_session",
    "first_line",
    "free_port",
    "http_status",
    "invoke_function",
    "load_event",
    "message_event",
    "polling_session",
    "replaced_routes",
    "running_gateway",
    "signed_request",
    "token",
    "until",
    "upgrade_request",
    "wait_for_health",
]
