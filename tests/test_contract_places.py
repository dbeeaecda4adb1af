"""Every client event of the contract has each of its places (docs/contributing.md, "How to add a client event"):
an action in the command table, a route in template.yaml with a route response, a handler module that runs that
action, and a message, a receive operation and a JSON frame in asyncapi.yaml. One test per place, so that a new
event in shared/contract.py that lacks one fails with the place it lacks."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest

from local_gateway.template import Template, route_response_keys
from shared import contract
from shared.actions import COMMANDS
from tests.support.contract import asyncapi_document

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Template.load()
ROUTES = TEMPLATE.route_functions()  # route key -> the logical id of the function its integration invokes
EVENTS = list(contract.CLIENT_EVENTS)
each_event = pytest.mark.parametrize("event", EVENTS)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def handler_path(event: str) -> tuple[str, str]:
    """(the module, the function) of the handler the event's route invokes, e.g. handlers.join_dashboard."""
    module, function = TEMPLATE.function_handler(ROUTES[event]).rsplit(".", 1)
    return module, function


def test_the_contract_has_client_events():
    assert EVENTS, "shared/contract.py's CLIENT_EVENTS is empty: this module would check nothing"


@each_event
def test_event_has_an_action_in_the_command_table(event):
    assert event in COMMANDS, f"{event} has no action in shared/actions.py's COMMANDS (Socket.IO dispatches by it)"


@each_event
def test_event_has_a_route_in_the_template(event):
    assert event in ROUTES, (
        f"{event} has no route in template.yaml: add an AWS::ApiGatewayV2::Route with RouteKey {event!r}, "
        "its integration and the function it invokes"
    )


@each_event
def test_event_route_answers_with_a_route_response(event):
    assert event in route_response_keys(TEMPLATE), (
        f"{event}'s route has no AWS::ApiGatewayV2::RouteResponse in template.yaml: the client would get no ack"
    )


@each_event
def test_event_route_function_has_a_handler_module(event):
    if event not in ROUTES:
        pytest.fail(f"{event} has no route in template.yaml, so no handler")
    module, function = handler_path(event)
    path = ROOT / (module.replace(".", "/") + ".py")
    assert module.startswith("handlers.") and path.is_file(), (
        f"{event}'s function {ROUTES[event]} names the handler {module}.{function}, but {path.relative_to(ROOT)} "
        "does not exist in handlers/"
    )


@each_event
def test_event_handler_runs_the_events_action(event):
    if event not in ROUTES or event not in COMMANDS:
        pytest.fail(f"{event} lacks a route or an action (see the tests above)")
    module, function = handler_path(event)
    action = COMMANDS[event]
    imported = getattr(importlib.import_module(module), action.__name__, None)
    assert imported is action, f"{module} does not import {action.__name__} from shared.actions ({event}'s action)"
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    (handler,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
    named = {node.id for node in ast.walk(handler) if isinstance(node, ast.Name)}
    assert action.__name__ in named, f"{module}.{function} never names {action.__name__}, {event}'s action"


def socketio_message_names(document: dict[str, Any]) -> set[str]:
    messages = document["components"]["messages"]
    channel = document["channels"]["socketio"]["messages"]
    return {messages[ref["$ref"].rsplit("/", 1)[1]]["name"] for ref in channel.values()}


@each_event
def test_event_is_a_message_of_the_asyncapi_socketio_channel(event, document):
    assert event in socketio_message_names(document), (
        f"{event} is not among asyncapi.yaml's channels.socketio.messages (a components.messages entry named "
        f"{event!r}, referenced from the channel)"
    )


@each_event
def test_event_has_a_receive_operation_in_asyncapi(event, document):
    messages = document["components"]["messages"]
    channel = document["channels"]["socketio"]["messages"]
    received = {
        messages[channel[ref["$ref"].rsplit("/", 1)[1]]["$ref"].rsplit("/", 1)[1]]["name"]
        for operation in document["operations"].values()
        if operation["action"] == "receive" and operation["channel"]["$ref"] == "#/channels/socketio"
        for ref in operation["messages"]
    }
    assert event in received, f"{event} has no operation with action: receive on the socketio channel in asyncapi.yaml"


@each_event
def test_event_is_an_action_of_the_asyncapi_client_frame(event, document):
    variants = document["components"]["schemas"]["ClientFrame"]["oneOf"]
    actions = {name for variant in variants for name in variant["properties"]["action"]["enum"]}
    assert event in actions, f"{event} is not an action of asyncapi.yaml's ClientFrame (the deployed JSON frames)"
