"""The stack of template.yaml simulated end to end: its table in moto, each function with the environment the
template gives it, a real Management API endpoint, and a whole life driven as API Gateway and EventBridge would
drive it. Every DynamoDB call (seen by boto3) and every @connections request (seen by the endpoint) each
function makes is checked against the IAM grants the template gives it."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import unquote

import pytest

from local_gateway.dynamodb import ensure_table
from local_gateway.template import Template
from shared.config import Config
from shared.fanout import FANOUT_KEY
from shared.contract import METRIC_NAMES
from shared.services import Services, dynamodb_client, reset_services
from tests import stack
from tests.support import ManagementApiEndpoint, connect_event, disconnect_event, load_event

A, B, C, D = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC=", "DDDDDDDDDDDDDDD="


class LambdaContext:
    """The part of Lambda's context the functions read: the time left before the timeout."""

    def __init__(self, remaining_ms: int) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


class CallingThreadOnly:
    """A function's container, lent to the thread that invokes it: a stray thread from another test (a gateway's
    scheduler left running) that calls `services()` meanwhile gets an error, not this stack's state."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._owner = threading.get_ident()

    def __getattr__(self, name: str) -> Any:
        if threading.get_ident() != self._owner:
            raise RuntimeError("another test's thread reached the simulated stack's services")
        return getattr(self._services, name)


class SimulatedStack:
    """One warm container (Services) per function, invoked with the event AWS would send it."""

    def __init__(
        self, template: Template, table_name: str, dynamodb_url: str, management_api: ManagementApiEndpoint
    ) -> None:
        self.template = template
        self.refs = stack.local_refs(template, table_name)
        self.routes = stack.route_functions(template)
        self.dynamodb_url = dynamodb_url
        self.management_url = management_api.url
        self.calls: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.requests = management_api.served  # (method, path) of every @connections request
        self._containers: dict[str, Services] = {}

    def environment(self, logical_id: str) -> dict[str, str]:
        env = stack.environment(self.template, logical_id, self.refs)
        deployed = f"https://{stack.API_ID}.execute-api.{stack.REGION}.amazonaws.com/{stack.STAGE}"
        assert env["CONNECTIONS_ENDPOINT_URL"] == deployed  # what API Gateway's domainName and stage imply
        env["CONNECTIONS_ENDPOINT_URL"] = f"{self.management_url}/{stack.STAGE}"
        env["DYNAMODB_ENDPOINT_URL"] = self.dynamodb_url
        return env

    def _record(self, logical_id: str, client: Any) -> None:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls[logical_id] += stack.required(model.name, params)

        client.meta.events.register("before-parameter-build.dynamodb", record)

    def _container(self, logical_id: str) -> Services:
        if logical_id not in self._containers:
            with mock.patch.dict(os.environ, self.environment(logical_id)):
                svc = Services.from_env()
            self._record(logical_id, svc.table.client)
            self._containers[logical_id] = svc
        return self._containers[logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        module, name = self.template.function_handler(logical_id).rsplit(".", 1)
        handler = getattr(importlib.import_module(module), name)
        container = self._container(logical_id)
        first = len(self.requests)
        with mock.patch.dict(os.environ, self.environment(logical_id)):
            reset_services(CallingThreadOnly(container))  # type: ignore[arg-type]
            try:
                return handler(event, context)
            finally:
                reset_services()
                # Whatever reached @connections during the call was this function's (calls run one at a time).
                for method, path in self.requests[first:]:
                    stage, connection_id = path.split("/@connections/", 1)
                    assert stage == f"/{stack.STAGE}", path  # the stage path of CONNECTIONS_ENDPOINT_URL
                    arn = stack.connection_arn(unquote(connection_id), method)
                    self.calls[logical_id].append(("execute-api:ManageConnections", arn))

    def scan(self) -> list[dict[str, Any]]:
        table = self.refs["Table"]
        client = dynamodb_client(Config.from_env({"TABLE_NAME": table, "DYNAMODB_ENDPOINT_URL": self.dynamodb_url}))
        return client.scan(TableName=table)["Items"]

    # -- as API Gateway calls the functions ------------------------------------------------
    def connect(self, connection_id: str, user: str | None = None) -> int:
        event = connect_event(connection_id, {"userId": user} if user else None)
        return self.invoke(self.routes["$connect"], event)["statusCode"]

    def disconnect(self, connection_id: str) -> int:
        return self.invoke(self.routes["$disconnect"], disconnect_event(connection_id))["statusCode"]

    def send(self, connection_id: str, frame: str) -> Any:
        """A client frame, routed by $request.body.action; the route response (the ack), if the route has one."""
        try:
            action = json.loads(frame).get("action")
        except ValueError:
            action = None
        route = action if action in self.routes else "$default"
        event = load_event("message", connection_id, body=frame)
        event["requestContext"]["routeKey"] = route
        result = self.invoke(self.routes[route], event)
        return json.loads(result["body"]) if self.has_route_response(route) else None

    def has_route_response(self, route_key: str) -> bool:
        routes = self.template.of_type("AWS::ApiGatewayV2::Route").items()
        (route_id,) = [name for name, route in routes if route["Properties"]["RouteKey"] == route_key]
        responses = self.template.of_type("AWS::ApiGatewayV2::RouteResponse").values()
        return any(response["Properties"]["RouteId"] == {"Ref": route_id} for response in responses)

    def invoke_json(self, logical_id: str, event: dict[str, Any]) -> Any:
        return json.loads(self.invoke(logical_id, event)["body"])

    def environment_function(self, variable: str) -> str:
        """The function a variable of the publisher's environment names (as a deployed name)."""
        publisher = stack.function_with_event(self.template, "Schedule")
        name = stack.environment(self.template, publisher, self.refs)[variable]
        (logical_id,) = [f for f in stack.functions(self.template) if self.refs[f] == name]
        return logical_id

    # -- as EventBridge calls them ---------------------------------------------------------
    def schedule(self, remaining_ms: int) -> dict[str, Any]:
        publisher = stack.function_with_event(self.template, "Schedule")
        return json.loads(self.invoke(publisher, load_event("scheduled"), LambdaContext(remaining_ms))["body"])

    def put_event(self, event: dict[str, Any]) -> dict[str, Any]:
        (target,) = [
            logical_id
            for logical_id, function in stack.functions(self.template).items()
            for source in function["Properties"].get("Events", {}).values()
            if source["Type"] == "EventBridgeRule"
            and all(event.get(key) in allowed for key, allowed in source["Properties"]["Pattern"].items())
        ]
        return json.loads(self.invoke(target, event)["body"])


@pytest.fixture
def simulated(moto_endpoint: str, management_api: ManagementApiEndpoint) -> Iterator[SimulatedStack]:
    template = Template.load()
    table_name = f"analytics-{uuid.uuid4().hex[:8]}"
    client = dynamodb_client(Config.from_env({"TABLE_NAME": table_name, "DYNAMODB_ENDPOINT_URL": moto_endpoint}))
    ensure_table(client, table_name, template)
    yield SimulatedStack(template, table_name, moto_endpoint, management_api)
    reset_services()


def frame(action: str, *data: Any) -> str:
    return json.dumps({"action": action, **({"data": data[0]} if data else {})})


def dashboard_update(dashboard_id: str, data: Any) -> dict[str, Any]:
    event = load_event("dashboard_update")
    event["detail"] = {"dashboardId": dashboard_id, "data": data}
    return event


def metrics(message: dict[str, Any]) -> tuple[int, int, int]:
    """The three counted metrics of a liveMetrics frame, after checking its shape."""
    assert message["event"] == "analytics:liveMetrics"
    items = message["data"]
    assert [item["name"] for item in items] == list(METRIC_NAMES)
    assert len({item["timestamp"] for item in items}) == 1
    assert all(0 <= item["value"] <= 100 for item in items[3:])
    return tuple(item["value"] for item in items[:3])


def update(message: dict[str, Any], dashboard_id: str, data: Any) -> bool:
    return message["event"] == "analytics:dashboardUpdate" and {
        k: v for k, v in message["data"].items() if k != "timestamp"
    } == {"dashboardId": dashboard_id, "data": data}


def test_stack_simulation_a_whole_life(simulated: SimulatedStack, management_api: ManagementApiEndpoint):
    ok = {"ok": True}
    # $connect: four connections, two of them one user; nothing may be posted from inside $connect.
    statuses = [
        simulated.connect(A, "alice"),
        simulated.connect(B, "alice"),
        simulated.connect(C),
        simulated.connect(D, "dave"),
    ]
    assert statuses == [200] * 4
    assert management_api.requests == 0

    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == ok
    assert simulated.send(B, frame("analytics:subscribeLiveMetrics")) == ok
    assert simulated.send(C, frame("analytics:joinDashboard", "sales")) == ok
    assert simulated.send(D, frame("analytics:joinDashboard", "sales")) == ok
    assert simulated.send(D, frame("analytics:joinDashboard", "ops")) == ok
    assert simulated.send(D, frame("analytics:requestLiveMetrics")) == ok
    assert simulated.send(C, frame("analytics:nope")) == {"ok": False, "error": "Unknown event: analytics:nope"}
    assert simulated.send(C, "not json")["ok"] is False

    # B leaves without a $disconnect; the scheduled tick finds it gone (410) and removes its state.
    management_api.gone.add(B)
    assert simulated.schedule(remaining_ms=2500) == {
        "ticks": 1,
        "pushes": 1,
        "delivered": 1,
        "gone": 1,
        "handed_off": 0,
    }
    # A slice of a larger fan-out, as the publisher hands it to a worker (Lambda async invoke): B is gone already.
    tick = management_api.events(A)[-1]
    worker_event = {FANOUT_KEY: {"connectionIds": [A, B], "frame": json.dumps(tick, separators=(",", ":"))}}
    assert simulated.invoke_json(simulated.environment_function("FANOUT_WORKER_FUNCTION"), worker_event) == {
        "delivered": 1,
        "gone": 1,
    }

    assert simulated.put_event(dashboard_update("sales", {"revenue": 1200})) == {"delivered": 2, "gone": 0}
    assert simulated.send(D, frame("analytics:leaveDashboard", "sales")) == ok
    assert simulated.put_event(dashboard_update("sales", {"revenue": 1300})) == {"delivered": 1, "gone": 0}
    assert simulated.send(A, frame("analytics:unsubscribeLiveMetrics")) == ok
    assert [simulated.disconnect(B), simulated.disconnect(C), simulated.disconnect(D)] == [200] * 3

    # Every frame posted, per connection, in order.
    a, b, c, d = (management_api.events(cid) for cid in (A, B, C, D))
    # On subscribe; the tick (counted before B was found gone); the worker's slice of the same tick.
    assert [metrics(m) for m in a] == [(3, 1, 0), (3, 2, 2), (3, 2, 2)] and a[1] == a[2]
    assert [metrics(m) for m in b] == [(3, 2, 0)]
    assert [m["event"] for m in c] == ["analytics:error"] * 2 + ["analytics:dashboardUpdate"] * 2
    assert c[0]["data"] == {"message": "Unknown event: analytics:nope", "event": "analytics:nope"}
    assert update(c[2], "sales", {"revenue": 1200}) and update(c[3], "sales", {"revenue": 1300})
    assert metrics(d[0]) == (3, 2, 2) and update(d[1], "sales", {"revenue": 1200}) and len(d) == 2

    # Every item left: A's connection, the counters, the latest snapshot (the tick's).
    items = {(i["PK"]["S"], i["SK"]["S"]): i for i in simulated.scan()}  # a test may scan; no function does
    indexing_a = {key for key in items if key[1] == f"CONN#{A}" and key[0] != f"CONN#{A}"}
    assert indexing_a <= {("USER#alice", f"CONN#{A}")}  # the store may list A under its user too
    assert set(items) - indexing_a == {
        (f"CONN#{A}", f"CONN#{A}"),
        ("USER#alice", "USER#alice"),
        ("USER#dave", "USER#dave"),
        ("ROOM#sales", "ROOM#sales"),
        ("ROOM#ops", "ROOM#ops"),
        ("METRICS", "COUNTS"),
        ("METRICS", "LATEST"),
    }
    connection = items[(f"CONN#{A}", f"CONN#{A}")]
    assert "live" not in connection and connection["rooms"]["N"] == "0" and connection["userId"]["S"] == "alice"
    assert {pk: items[(pk, pk)]["members"]["N"] for pk in ("USER#alice", "USER#dave", "ROOM#sales", "ROOM#ops")} == {
        "USER#alice": "1",
        "USER#dave": "0",
        "ROOM#sales": "0",
        "ROOM#ops": "0",
    }
    counters = items[("METRICS", "COUNTS")]
    counts = {name: counters[name]["N"] for name in ("connections", "activeUsers", "subscribers", "activeDashboards")}
    assert counts == {"connections": "1", "activeUsers": "1", "subscribers": "0", "activeDashboards": "0"}
    assert json.loads(items[("METRICS", "LATEST")]["snapshot"]["S"]) == a[1]["data"]
    assert all("expiresAt" in item for item in items.values())

    # Least privilege, from the other side: every call each function made is one its role allows.
    assert set(simulated.calls) == set(stack.functions(simulated.template))
    for logical_id, calls in simulated.calls.items():
        granted = stack.grants(simulated.template, logical_id, simulated.refs)
        denied = sorted({call for call in calls if not stack.allows(granted, *call)})
        assert denied == [], f"{logical_id} would be denied {denied}"


def test_stack_simulation_sees_a_call_the_template_does_not_grant(simulated: SimulatedStack):
    """The least-privilege check above can fail: a call outside a function's grants is reported."""
    simulated.connect(A)
    granted = stack.grants(simulated.template, "ConnectFunction", simulated.refs)
    assert all(stack.allows(granted, *call) for call in simulated.calls["ConnectFunction"])
    assert not stack.allows(granted, "dynamodb:Scan", stack.table_arn("x"))
    assert not stack.allows(granted, "dynamodb:DeleteItem", simulated.refs["Table.Arn"])
    assert not stack.allows(granted, "execute-api:ManageConnections", stack.connection_arn(A))
