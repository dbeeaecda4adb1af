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
from urllib.parse import quote, unquote

import pytest
from botocore.awsrequest import AWSResponse

from local_gateway.dynamodb.embedded import ensure_table
from local_gateway.template import Template
from shared import socketio_open
from shared.clients import dynamodb_client
from shared.config import Config
from shared.contract import COUNT_METRIC_NAMES, MAX_FRAME_BYTES, METRIC_NAMES
from shared.fanout import FANOUT_KEY
from shared.services import Services, reset_services
from tests import stack
from tests.support.cloudwatch import cloudwatch_metrics
from tests.support.events import connect_event, disconnect_event, load_event
from tests.support.management_api import ManagementApiEndpoint

PUBLISHER, RECONCILER = "PublishMetricsFunction", "ReconcileFunction"  # each on a schedule of its own

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
        self,
        template: Template,
        table_name: str,
        dynamodb_url: str,
        management_api: ManagementApiEndpoint,
        parameters: dict[str, str] | None = None,
        cloudwatch_url: str | None = None,
    ) -> None:
        self.template = template
        self.refs = {**stack.local_refs(template, table_name), **(parameters or {})}  # deployed with these
        self.routes = template.route_functions()
        self.dynamodb_url = dynamodb_url
        self.cloudwatch_url = cloudwatch_url or "http://127.0.0.1:9"  # none: a CloudWatch that never answers
        self.management_url = management_api.url
        self.calls: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.requests = management_api.served  # (method, path) of every @connections request
        self.management_api = management_api
        self._containers: dict[str, Services] = {}
        self._active: list[str] = []  # the functions running now, innermost last
        self._attributed = 0  # @connections requests already attributed to a function
        # Lambda's queue of asynchronous invocations: (logical id, payload), run once their caller has returned.
        self.queued: list[tuple[str, dict[str, Any]]] = []
        # Every asynchronous invocation Lambda ran: (logical id, payload, result).
        self.invoked: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.early = False  # Lambda runs an async invocation at once, before its caller returns (it may)

    def environment(self, logical_id: str) -> dict[str, str]:
        env = stack.environment(self.template, logical_id, self.refs)
        deployed = f"https://{stack.API_ID}.execute-api.{stack.REGION}.amazonaws.com/{stack.STAGE}"
        assert env["CONNECTIONS_ENDPOINT_URL"] == deployed  # what API Gateway's domainName and stage imply
        env["CONNECTIONS_ENDPOINT_URL"] = f"{self.management_url}/{stack.STAGE}"
        env["DYNAMODB_ENDPOINT_URL"] = self.dynamodb_url
        env["CLOUDWATCH_ENDPOINT_URL"] = self.cloudwatch_url
        return env

    def _record(self, logical_id: str, client: Any) -> None:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls[logical_id] += stack.required(model.name, params)

        client.meta.events.register("before-parameter-build.dynamodb", record)

    def _record_cloudwatch(self, logical_id: str, client: Any) -> None:
        """CloudWatch's actions have no resource-level permission: each is authorised against "*"."""

        def record(model: Any, **_: Any) -> None:
            self.calls[logical_id].append((f"cloudwatch:{model.name}", "*"))

        client.meta.events.register("before-parameter-build.cloudwatch", record)

    def _route_invocations(self, logical_id: str, client: Any) -> None:
        """Lambda's Invoke, as the function's boto3 client makes it: authorised against the function's grants,
        then queued (InvocationType=Event) for the function the name stands for, which runs with its own
        environment once the caller has returned (or at once, when `early`)."""
        requested: dict[str, Any] = {}

        def record(params: dict[str, Any], **_: Any) -> None:
            requested.clear()
            requested.update(params)
            self.calls[logical_id].append(("lambda:InvokeFunction", stack.invoked_function_arn(params["FunctionName"])))

        def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            assert requested["InvocationType"] == "Event", requested  # every invocation here is asynchronous
            (target,) = [f for f in stack.functions(self.template) if self.refs[f] == requested["FunctionName"]]
            payload = json.loads(requested["Payload"])
            if self.early:
                self.invoked.append((target, payload, self.invoke(target, payload)))
            else:
                self.queued.append((target, payload))
            return AWSResponse("", 202, {}, None), {"StatusCode": 202, "ResponseMetadata": {"HTTPStatusCode": 202}}

        client.meta.events.register("before-parameter-build.lambda.Invoke", record)
        client.meta.events.register("before-call.lambda.Invoke", answer)

    def _container(self, logical_id: str) -> Services:
        if logical_id not in self._containers:
            with mock.patch.dict(os.environ, self.environment(logical_id)):
                svc = Services.from_env()
                # The Lambda clients the function may use, built now so that their Invoke calls are routed.
                invokers = [svc.invoker, svc.open_invoker() if svc.config.open_function else None]
            svc.reconciler.sleep = lambda seconds: None  # its settle: nothing else runs while a simulated one does
            self._record(logical_id, svc.table.client)
            if svc.system_metrics.cloudwatch is not None:  # every function may; the test checks which does
                self._record_cloudwatch(logical_id, svc.system_metrics.cloudwatch.client)
            for invoker in filter(None, invokers):
                self._route_invocations(logical_id, invoker.client)
            self._containers[logical_id] = svc
        return self._containers[logical_id]

    def _attribute_requests(self) -> None:
        """Whatever reached @connections since the last look was the innermost running function's."""
        for method, path in self.requests[self._attributed :]:
            stage, connection_id = path.split("/@connections/", 1)
            assert stage == f"/{stack.STAGE}", path  # the stage path of CONNECTIONS_ENDPOINT_URL
            arn = stack.connection_arn(unquote(connection_id), method)
            self.calls[self._active[-1]].append(("execute-api:ManageConnections", arn))
        self._attributed = len(self.requests)

    def invoke(self, logical_id: str, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """One invocation, then (when it is the outermost) every asynchronous invocation it queued."""
        result = self._invoke(logical_id, event, context)
        if len(self._active) == 0:
            self.run_queued()
        return result

    def run_queued(self) -> None:
        while self.queued:
            target, payload = self.queued.pop(0)
            self.invoked.append((target, payload, self._invoke(target, payload, None)))

    def _invoke(self, logical_id: str, event: dict[str, Any], context: Any) -> dict[str, Any]:
        module, name = self.template.function_handler(logical_id).rsplit(".", 1)
        handler = getattr(importlib.import_module(module), name)
        container = self._container(logical_id)
        if self._active:
            self._attribute_requests()
        self._active.append(logical_id)
        try:
            with mock.patch.dict(os.environ, self.environment(logical_id)):
                reset_services(CallingThreadOnly(container))  # type: ignore[arg-type]
                try:
                    return handler(event, context)
                finally:
                    self._attribute_requests()
        finally:
            self._active.pop()
            # Back to the caller's container, when an early asynchronous invocation ran inside its call.
            reset_services(CallingThreadOnly(self._containers[self._active[-1]]) if self._active else None)  # type: ignore[arg-type]

    def scan(self) -> list[dict[str, Any]]:
        table = self.refs["Table"]
        client = dynamodb_client(Config.from_env({"TABLE_NAME": table, "DYNAMODB_ENDPOINT_URL": self.dynamodb_url}))
        return client.scan(TableName=table)["Items"]

    # -- as API Gateway calls the functions ------------------------------------------------
    def connect(self, connection_id: str, user: str | None = None, query: dict[str, str] | None = None) -> int:
        """$connect; the connection is postable only once it has returned (API Gateway answers 410 until then),
        and only then does Lambda run what it queued (unless `early`)."""
        query = {**(query or {}), **({"userId": user} if user else {})} or None
        connecting = connection_id not in self.management_api.gone
        if connecting:
            self.management_api.gone.add(connection_id)
        try:
            result = self._invoke(self.routes["$connect"], connect_event(connection_id, query), None)
        finally:
            if connecting:
                self.management_api.gone.discard(connection_id)
        self.run_queued()
        return result["statusCode"]

    def disconnect(self, connection_id: str) -> int:
        return self.invoke(self.routes["$disconnect"], disconnect_event(connection_id))["statusCode"]

    def send(self, connection_id: str, frame: str) -> Any:
        """A client frame, routed by $request.body.action; the route response (the ack), if the route has one."""
        route, body = self._route(connection_id, frame)
        return json.loads(body) if self.has_route_response(route) else None

    def send_socketio(self, connection_id: str, frame: str) -> str:
        """A Socket.IO frame (never a JSON object, so always $default); the route response as sent."""
        route, body = self._route(connection_id, frame)
        assert route == "$default" and self.has_route_response(route)
        return body

    def _route(self, connection_id: str, frame: str) -> tuple[str, str]:
        try:
            parsed = json.loads(frame)
        except ValueError:
            parsed = None
        action = parsed.get("action") if isinstance(parsed, dict) else None  # `40` is JSON too: the number 40
        route = action if action in self.routes else "$default"
        event = load_event("message", connection_id, body=frame)
        event["requestContext"]["routeKey"] = route
        return route, self.invoke(self.routes[route], event)["body"]

    def has_route_response(self, route_key: str) -> bool:
        routes = self.template.of_type("AWS::ApiGatewayV2::Route").items()
        (route_id,) = [name for name, route in routes if route["Properties"]["RouteKey"] == route_key]
        responses = self.template.of_type("AWS::ApiGatewayV2::RouteResponse").values()
        return any(response["Properties"]["RouteId"] == {"Ref": route_id} for response in responses)

    def invoke_json(self, logical_id: str, event: dict[str, Any]) -> Any:
        return json.loads(self.invoke(logical_id, event)["body"])

    def environment_function(self, variable: str) -> str:
        """The function a variable of the publisher's environment names (as a deployed name)."""
        publisher = PUBLISHER
        name = stack.environment(self.template, publisher, self.refs)[variable]
        (logical_id,) = [f for f in stack.functions(self.template) if self.refs[f] == name]
        return logical_id

    # -- as EventBridge calls them ---------------------------------------------------------
    def schedule(self, remaining_ms: int) -> dict[str, Any]:
        return json.loads(self.invoke(PUBLISHER, load_event("scheduled"), LambdaContext(remaining_ms))["body"])

    def reconcile(self) -> dict[str, Any]:
        """The reconciler's own schedule (EventBridge, every minute)."""
        return json.loads(self.invoke(RECONCILER, load_event("scheduled"), LambdaContext(120_000))["body"])

    def put_event(self, event: dict[str, Any]) -> dict[str, Any]:
        (target,) = [
            logical_id
            for logical_id, function in stack.functions(self.template).items()
            for source in function["Properties"].get("Events", {}).values()
            if source["Type"] == "EventBridgeRule"
            and all(event.get(key) in allowed for key, allowed in source["Properties"]["Pattern"].items())
        ]
        return json.loads(self.invoke(target, event)["body"])


def simulated_stack(
    moto_endpoint: str,
    management_api: ManagementApiEndpoint,
    parameters: dict[str, str] | None = None,
    cloudwatch_url: str | None = None,
) -> SimulatedStack:
    template = Template.load()
    table_name = f"analytics-{uuid.uuid4().hex[:8]}"
    client = dynamodb_client(Config.from_env({"TABLE_NAME": table_name, "DYNAMODB_ENDPOINT_URL": moto_endpoint}))
    ensure_table(client, table_name, template)
    return SimulatedStack(template, table_name, moto_endpoint, management_api, parameters, cloudwatch_url)


@pytest.fixture
def simulated(moto_endpoint: str, management_api: ManagementApiEndpoint) -> Iterator[SimulatedStack]:
    """The stack deployed with the template's defaults."""
    yield simulated_stack(moto_endpoint, management_api)
    reset_services()


def frame(action: str, *data: Any) -> str:
    return json.dumps({"action": action, **({"data": data[0]} if data else {})})


def dashboard_update(dashboard_id: str, data: Any) -> dict[str, Any]:
    event = load_event("dashboard_update")
    event["detail"] = {"dashboardId": dashboard_id, "data": data}
    return event


def metrics(message: dict[str, Any], *after: str) -> tuple[int, int, int]:
    """The three counted metrics of a liveMetrics frame, after checking its shape: the template's default
    (SystemMetricsSource none) leaves CPU and memory out, and the names `after` follow the counts."""
    assert message["event"] == "analytics:liveMetrics"
    items = message["data"]
    assert [item["name"] for item in items] == [*COUNT_METRIC_NAMES, *after]
    assert len({item["timestamp"] for item in items}) == 1
    return tuple(item["value"] for item in items[:3])


def metric_report(name: Any, value: Any) -> dict[str, Any]:
    return load_event("metric_report", detail={"name": name, "value": value})


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

    # A service reports a metric of its own (EventBridge MetricReport): the tick carries it after the counts.
    assert simulated.put_event(metric_report("Orders per minute", 42)) == {"name": "Orders per minute", "value": 42}

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
    # The reconciler, on its own schedule: one whole pass over a table this small, nothing to heal; A is younger
    # than the grace period (RECONCILE_CHECK_AFTER_SECONDS), so nobody is asked about.
    assert simulated.reconcile() == {
        "visited": 5,  # ANON, alice, dave, sales, ops
        "healed": 0,
        "zeroed": 0,
        "finished": True,
        "totals_written": True,
        "checked": 0,
        "removed": 0,
        "unanswered": 0,
    }

    # Every frame posted, per connection, in order.
    a, b, c, d = (management_api.events(cid) for cid in (A, B, C, D))
    # On subscribe; the tick (counted before B was found gone); the worker's slice of the same tick.
    reported = "Orders per minute"
    assert [metrics(m, *after) for m, after in zip(a, [(), (reported,), (reported,)], strict=True)] == [
        (3, 1, 0),
        (3, 2, 2),
        (3, 2, 2),
    ]
    assert a[1] == a[2] and a[1]["data"][3]["value"] == 42
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
        ("ANON", "ANON"),  # C's, anonymous: the count the reconciler heals anonymous connections by
        ("METRICS", "COUNTS"),
        ("METRICS", "LATEST"),
        ("METRICS", "RECONCILE"),
        ("METRICS", "REPORTED"),  # the reported metrics
    } | history_keys(items, "sales", 2)
    connection = items[(f"CONN#{A}", f"CONN#{A}")]
    assert "live" not in connection and "roomIds" not in connection and connection["userId"]["S"] == "alice"
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

    # Every function but the Socket.IO open-packet one (see the Socket.IO life below) and the JSON frames' resume
    # (see the recovery below) ran, within its grants.
    assert set(simulated.calls) == set(stack.functions(simulated.template)) - {"SocketIOOpenFunction", "ResumeFunction"}
    assert_least_privilege(simulated)


def assert_least_privilege(simulated: SimulatedStack) -> None:
    """Least privilege, from the other side: every call each function made is one its role allows."""
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


def test_stack_simulation_the_reconciler_removes_a_connection_gone_without_disconnect(
    simulated: SimulatedStack, management_api: ManagementApiEndpoint
):
    """A's socket goes away and no $disconnect comes; past its grace period the reconciler asks API Gateway about
    A and C (GET @connections/{id}), removes A, and does so within ReconcileFunction's grants."""
    assert [simulated.connect(A, "alice"), simulated.connect(C)] == [200, 200]
    assert simulated.send(A, frame("analytics:joinDashboard", "sales")) == {"ok": True}
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    management_api.gone.add(A)
    container = simulated._container(RECONCILER)
    grace = container.reconciler.stale_check.grace_seconds  # as the template's environment sets it
    container.table.clock = lambda: time.time() + grace + 1
    result = simulated.reconcile()
    assert (result["checked"], result["removed"], result["finished"]) == (2, 1, True)
    assert management_api.asked() == [C, A]  # ANON's connections first, then each user's
    keys = {(i["PK"]["S"], i["SK"]["S"]) for i in simulated.scan()}
    assert not {key for key in keys if A in key[0] or A in key[1]}
    counters = next(i for i in simulated.scan() if (i["PK"]["S"], i["SK"]["S"]) == ("METRICS", "COUNTS"))
    counts = {name: counters[name]["N"] for name in ("connections", "activeUsers", "subscribers", "activeDashboards")}
    assert counts == {"connections": "1", "activeUsers": "1", "subscribers": "0", "activeDashboards": "0"}
    assert ("execute-api:ManageConnections", stack.connection_arn(A, "GET")) in simulated.calls[RECONCILER]
    assert_least_privilege(simulated)


S, T, U = "SSSSSSSSSSSSSSS=", "TTTTTTTTTTTTTTT=", "UUUUUUUUUUUUUUU="
SOCKETIO_QUERY = {"EIO": "4", "transport": "websocket"}


def history_keys(items: dict[tuple[str, str], Any], dashboard_id: str, count: int) -> set[tuple[str, str]]:
    """The dashboard's history: one item per update published (kept for recovery and the last value on join),
    numbered from the first one's publish time in ms, with no gap."""
    keys = sorted(key for key in items if key[0] == f"HIST#{dashboard_id}")
    first = int(keys[0][1])
    assert [int(sk) for _, sk in keys] == list(range(first, first + count)) and items[keys[0]]["first"]["BOOL"]
    return set(keys)


def connect_answer(simulated: SimulatedStack, management_api: ManagementApiEndpoint, cid: str, frame: str) -> Any:
    """Socket.IO's namespace CONNECT at $default: its answer is posted (before anything a recovery replays), and
    the route response is Engine.IO's noop."""
    assert simulated.send_socketio(cid, frame) == "6"
    (answer,) = [raw for raw in management_api.raw[cid] if raw.startswith(b"40")][-1:]
    return json.loads(answer[2:])


def socketio_event(raw: bytes) -> dict[str, Any]:
    """A server event as Socket.IO frames it (`42["name",data]`), in the shape the JSON frames have."""
    assert raw.startswith(b"42["), raw
    name, data, *offset = json.loads(raw[2:])
    return {"event": name, "data": data, **({"offset": offset[0]} if offset else {})}


def one_push(delivered: int, gone: int) -> dict[str, int]:
    return {"ticks": 1, "pushes": 1, "delivered": delivered, "gone": gone, "handed_off": 0}


def test_stack_simulation_a_socketio_life(simulated: SimulatedStack, management_api: ManagementApiEndpoint):
    """Socket.IO connections beside JSON ones: the open packet after $connect, the namespace handshake, events
    with acks, mixed fan-out encoded once per protocol, the heartbeat and its pong, 410 cleanup, `41`."""
    raw = management_api.raw
    # $connect: A and C speak JSON frames; S (user sam) and T (anonymous) speak Socket.IO.
    assert simulated.connect(A) == 200 and simulated.connect(C) == 200
    assert simulated.connect(S, "sam", SOCKETIO_QUERY) == 200
    assert simulated.connect(T, query=SOCKETIO_QUERY) == 200
    # ConnectFunction posted nothing (S and T answered 410 while it ran); it invoked the open-packet function
    # asynchronously, and Lambda ran it once $connect had returned: each open packet was posted once, at once.
    assert not [call for call in simulated.calls["ConnectFunction"] if call[0].startswith("execute-api:")]
    opener = stack.function_arn("SocketIOOpenFunction")
    assert [c for c in simulated.calls["ConnectFunction"] if c[0] == "lambda:InvokeFunction"] == [
        ("lambda:InvokeFunction", opener)
    ] * 2
    assert [(target, payload["open"]["connectionId"], result) for target, payload, result in simulated.invoked] == [
        ("SocketIOOpenFunction", cid, {"statusCode": 200, "body": json.dumps({"opened": True})}) for cid in (S, T)
    ]
    assert [unquote(path.rsplit("/", 1)[1]) for _, path in management_api.served] == [S, T]
    env = simulated.environment("SocketIOOpenFunction")
    for cid in (S, T):
        ((open_packet,),) = [raw[cid]]
        assert open_packet.startswith(b"0{")
        assert json.loads(open_packet[1:]) == {
            "sid": cid,
            "upgrades": [],
            "pingInterval": int(env["SOCKETIO_PING_INTERVAL_SECONDS"]) * 1000,
            "pingTimeout": int(env["SOCKETIO_PING_TIMEOUT_SECONDS"]) * 1000,
            "maxPayload": MAX_FRAME_BYTES,
        }
    assert A not in raw and C not in raw

    # The namespace handshake, answered in the route response; then events with acks.
    for cid in (S, T):  # the sid, and the session's private id for connection state recovery
        answer = connect_answer(simulated, management_api, cid, "40")
        assert answer["sid"] == cid and set(answer) == {"sid", "pid"}
    assert simulated.send_socketio(S, '420["analytics:subscribeLiveMetrics"]') == '430[{"ok":true}]'
    assert simulated.send_socketio(T, '421["analytics:subscribeLiveMetrics"]') == '431[{"ok":true}]'
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    assert simulated.send_socketio(S, '422["analytics:joinDashboard","sales"]') == '432[{"ok":true}]'
    assert simulated.send(C, frame("analytics:joinDashboard", "sales")) == {"ok": True}
    assert simulated.send(C, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    # The immediate push on subscribe, in each connection's own protocol.
    assert metrics(socketio_event(raw[S][2])) == (4, 1, 0) and metrics(socketio_event(raw[T][2])) == (4, 2, 0)
    assert [metrics(m) for m in management_api.events(A)] == [(4, 3, 0)]
    assert [metrics(m) for m in management_api.events(C)] == [(4, 4, 1)]

    # A dashboard update reaches its JSON and its Socket.IO member, each in its own encoding.
    assert simulated.put_event(dashboard_update("sales", {"revenue": 1200})) == {"delivered": 2, "gone": 0}
    assert update(socketio_event(raw[S][3]), "sales", {"revenue": 1200})
    assert update(management_api.events(C)[-1], "sales", {"revenue": 1200})
    assert socketio_event(raw[S][3])["data"] == management_api.events(C)[-1]["data"]  # one payload, two encodings

    # The publisher's tick: the heartbeat pings the Socket.IO connections only, then the snapshot goes to every
    # subscriber, encoded once per protocol.
    before = {cid: len(raw[cid]) for cid in (A, C, S, T)}
    assert simulated.schedule(remaining_ms=2500) == one_push(delivered=4, gone=0)
    posted = {cid: raw[cid][before[cid] :] for cid in (A, C, S, T)}
    assert [posted[cid][0] for cid in (S, T)] == [b"2", b"2"]  # the heartbeat, Socket.IO only
    assert [len(posted[cid]) for cid in (A, C, S, T)] == [1, 1, 2, 2]
    # One body per protocol: every receiver of a protocol got the very same bytes.
    json_bodies, socketio_bodies = {posted[A][0], posted[C][0]}, {posted[S][1], posted[T][1]}
    assert len(json_bodies) == len(socketio_bodies) == 1
    tick = json.loads(posted[A][0])
    assert socketio_event(posted[S][1]) == tick and metrics(tick) == (4, 4, 1)

    # A pong costs nothing: no DynamoDB call, no post; the answer is Engine.IO's noop.
    calls, served = len(simulated.calls["DefaultFunction"]), len(management_api.served)
    assert simulated.send_socketio(S, "3") == "6"
    assert len(simulated.calls["DefaultFunction"]) == calls and len(management_api.served) == served

    # T leaves without a word: the next tick (no heartbeat due yet) finds it gone and removes its state.
    assert ("SOCKETIO", f"CONN#{T}") in {(i["PK"]["S"], i["SK"]["S"]) for i in simulated.scan()}
    management_api.gone.add(T)
    before = {cid: len(raw[cid]) for cid in (A, C, S, T)}
    assert simulated.schedule(remaining_ms=2500) == one_push(delivered=3, gone=1)
    posted = {cid: raw[cid][before[cid] :] for cid in (A, C, S, T)}
    assert [len(posted[cid]) for cid in (A, C, S, T)] == [1, 1, 1, 0]  # no heartbeat due yet
    assert metrics(socketio_event(posted[S][0])) == (4, 4, 1)  # counted before T was found gone
    left = [(i["PK"]["S"], i["SK"]["S"]) for i in simulated.scan() if T in i["SK"]["S"] or T in i["PK"]["S"]]
    assert left == [(f"CONN#{T}", f"SESSION#{T}")]  # which session T held: kept with it for the recovery window

    # `41` removes S's state at once; the $disconnects that follow find nothing left to remove.
    assert simulated.send_socketio(S, "41") == "6"
    assert not [i for i in simulated.scan() if S in i["SK"]["S"] or S in i["PK"]["S"]]
    assert [simulated.disconnect(cid) for cid in (S, T, A, C)] == [200] * 4

    # Every item left is a counter (all back to zero), the latest snapshot, the dashboard's history, and the
    # session of T, which left without a word: kept for the recovery window (S's `41` ended its own).
    items = {(i["PK"]["S"], i["SK"]["S"]): i for i in simulated.scan()}
    (session,) = [item for (pk, _), item in items.items() if pk.startswith("SESSION#")]
    assert session["connectionId"]["S"] == T and "leftAt" in session
    assert set(items) - {(session["PK"]["S"], session["SK"]["S"]), (f"CONN#{T}", f"SESSION#{T}")} == {
        ("USER#sam", "USER#sam"),
        ("ROOM#sales", "ROOM#sales"),
        ("ANON", "ANON"),  # the anonymous connections' count
        ("METRICS", "COUNTS"),
        ("METRICS", "LATEST"),
    } | history_keys(items, "sales", 1)
    assert items[("ANON", "ANON")]["members"]["N"] == "0"
    assert items[("USER#sam", "USER#sam")]["members"]["N"] == items[("ROOM#sales", "ROOM#sales")]["members"]["N"] == "0"
    counters = items[("METRICS", "COUNTS")]
    counts = {name: counters[name]["N"] for name in ("connections", "activeUsers", "subscribers", "activeDashboards")}
    assert counts == {"connections": "0", "activeUsers": "0", "subscribers": "0", "activeDashboards": "0"}
    assert json.loads(items[("METRICS", "LATEST")]["snapshot"]["S"]) == json.loads(raw[A][-1])["data"]

    assert set(simulated.calls) == {
        "ConnectFunction",
        "SocketIOOpenFunction",
        "DefaultFunction",
        "SubscribeLiveMetricsFunction",
        "JoinDashboardFunction",
        "PublishDashboardUpdateFunction",
        "PublishMetricsFunction",
        "DisconnectFunction",
    }
    assert_least_privilege(simulated)


def test_stack_simulation_open_packet_is_refused_during_connect(simulated: SimulatedStack):
    """Lambda may run the open-packet function before $connect has returned: API Gateway answers 410 to its
    posts, which it retries; one that never gets through removes what $connect stored."""
    simulated.early = True
    with mock.patch.object(socketio_open, "RETRY_DELAYS_SECONDS", (0.0, 0.0)):
        assert simulated.connect(U, query=SOCKETIO_QUERY) == 200
    ((target, _, result),) = simulated.invoked
    assert (target, result) == ("SocketIOOpenFunction", {"statusCode": 410, "body": json.dumps({"opened": False})})
    assert [(method, unquote(path)) for method, path in simulated.requests] == [
        ("POST", f"/{stack.STAGE}/@connections/{U}")
    ] * 3
    assert simulated.management_api.raw == {}
    assert simulated.scan() == []
    # The posts were the open-packet function's, not $connect's (which only invoked it).
    assert [call[0] for call in simulated.calls["ConnectFunction"]].count("execute-api:ManageConnections") == 0
    assert [call[0] for call in simulated.calls["SocketIOOpenFunction"]].count("execute-api:ManageConnections") == 3
    # Should the client still send its namespace CONNECT, nothing registers it: refused, then closed by $default.
    simulated.early = False
    assert simulated.send_socketio(U, "40") == "6"
    assert simulated.management_api.raw == {U: [b'44{"message":"Unauthorized"}']}
    assert [(method, unquote(path)) for method, path in simulated.requests[3:]] == [
        ("POST", f"/{stack.STAGE}/@connections/{U}"),
        ("DELETE", f"/{stack.STAGE}/@connections/{U}"),
    ]
    assert ("execute-api:ManageConnections", stack.connection_arn(U, "DELETE")) in simulated.calls["DefaultFunction"]
    assert simulated.scan() == []
    assert_least_privilege(simulated)


def test_stack_simulation_a_recovery_through_the_deployed_functions(simulated, management_api):
    """A JSON client starts a session, drops, and takes it over on a new connection (the resume route); a
    Socket.IO client does the same in its CONNECT (at $default), and so does one whose old connection API Gateway
    has not noticed gone yet (a half-open one, taken over and closed)."""
    assert simulated.connect(A, "alice") == 200
    started = simulated.send(A, frame("resume"))
    assert started["ok"] is True and started["recovered"] is False
    assert simulated.send(A, frame("analytics:joinDashboard", "sales")) == {"ok": True}
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    assert simulated.put_event(dashboard_update("sales", {"n": 1})) == {"delivered": 1, "gone": 0}
    offset = management_api.events(A)[-1]["offset"]
    event = disconnect_event(A)
    event["requestContext"]["disconnectStatusCode"] = 1006  # a drop, not a goodbye
    assert simulated.invoke(simulated.routes["$disconnect"], event)["statusCode"] == 200
    assert simulated.put_event(dashboard_update("sales", {"n": 2})) == {"delivered": 0, "gone": 0}
    assert simulated.put_event(dashboard_update("sales", {"n": 3})) == {"delivered": 0, "gone": 0}

    assert simulated.connect(B, "alice") == 200
    resumed = simulated.send(B, frame("resume", {"session": started["session"], "offset": offset}))
    assert resumed == {"ok": True, "session": started["session"], "recovered": True}
    b = management_api.events(B)
    assert [m["event"] for m in b] == [
        "analytics:liveMetrics",
        "analytics:dashboardUpdate",
        "analytics:dashboardUpdate",
    ]
    assert [m["data"]["data"] for m in b[1:]] == [{"n": 2}, {"n": 3}]
    assert simulated.put_event(dashboard_update("sales", {"n": 4})) == {"delivered": 1, "gone": 0}
    assert management_api.events(B)[-1]["data"]["data"] == {"n": 4}
    # Another user presenting the session gets a new one.
    assert simulated.connect(C, "mallory") == 200
    assert simulated.send(C, frame("resume", {"session": started["session"]}))["recovered"] is False

    # Socket.IO at $default: the CONNECT carries {pid, offset}. S's connection is still registered (half-open):
    # the recovery takes it over and closes it.
    assert simulated.connect(S, query=SOCKETIO_QUERY) == 200
    pid = connect_answer(simulated, management_api, S, "40")["pid"]
    assert simulated.send_socketio(S, '420["analytics:joinDashboard","ops"]') == '430[{"ok":true}]'
    assert simulated.connect(T, query=SOCKETIO_QUERY) == 200
    answer = connect_answer(simulated, management_api, T, "40" + json.dumps({"pid": pid}))
    assert answer == {"sid": S, "pid": pid}  # the same sid and pid: `socket.recovered` is true on the client
    assert ("DELETE", f"/{stack.STAGE}/@connections/{quote(S)}") in management_api.served
    assert simulated.put_event(dashboard_update("ops", {"n": 1})) == {"delivered": 1, "gone": 0}

    # A deliberate leave (1000) of a connection a publisher already found gone ends its session all the same.
    management_api.gone.add(T)
    assert simulated.put_event(dashboard_update("ops", {"n": 2})) == {"delivered": 0, "gone": 1}
    leaving = disconnect_event(T)
    leaving["requestContext"]["disconnectStatusCode"] = 1000
    assert simulated.invoke(simulated.routes["$disconnect"], leaving)["statusCode"] == 200
    assert simulated.connect(U, query=SOCKETIO_QUERY) == 200
    assert connect_answer(simulated, management_api, U, "40" + json.dumps({"pid": pid}))["pid"] != pid

    assert "ResumeFunction" in simulated.calls
    assert_least_privilege(simulated)


# -- the live metrics as deployed (docs/metrics.md) ---------------------------------------------------------------
def cloudwatch_actions(simulated: SimulatedStack) -> set[str]:
    """The functions that called CloudWatch."""
    return {f for f, calls in simulated.calls.items() for action, _ in calls if action.startswith("cloudwatch:")}


def test_stack_simulation_a_cloudwatch_source_feeds_cpu_and_memory_and_every_answer_agrees(
    moto_endpoint: str, management_api: ManagementApiEndpoint, cloudwatch_endpoint: str
):
    settings = cloudwatch_metrics(cloudwatch_endpoint, cpu=37.4, memory=61.6)
    parameters = {
        "SystemMetricsSource": "cloudwatch",
        "SystemMetricsNamespace": settings["SYSTEM_METRICS_NAMESPACE"],
        "SystemMetricsDimensions": settings["SYSTEM_METRICS_DIMENSIONS"],
    }
    simulated = simulated_stack(moto_endpoint, management_api, parameters, cloudwatch_endpoint)
    try:
        assert [simulated.connect(cid) for cid in (A, B, D)] == [200] * 3
        session = simulated.send(A, frame("resume"))["session"]
        assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
        # No tick yet: the subscribe's own readings, and only the publisher may call CloudWatch.
        assert metrics(management_api.events(A)[0]) == (3, 1, 0)
        assert simulated.schedule(remaining_ms=2500)["pushes"] == 1
        pushed = management_api.events(A)[-1]
        assert metrics(pushed, *METRIC_NAMES[3:]) == (3, 1, 0)
        assert [metric["value"] for metric in pushed["data"][3:]] == [37, 62]
        # Within the period, other functions' sandboxes answer with the tick's CPU and memory, the counts as of now.
        assert simulated.send(B, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
        assert simulated.send(D, frame("analytics:requestLiveMetrics")) == {"ok": True}
        for message in (management_api.events(B)[0], management_api.events(D)[0]):
            assert metrics(message, *METRIC_NAMES[3:]) == (3, 2, 0)
            assert [metric["value"] for metric in message["data"][3:]] == [37, 62]
        # A drops; its session, recovered on a new connection, gets its subscription back with the same readings.
        event = disconnect_event(A)
        event["requestContext"]["disconnectStatusCode"] = 1006
        assert simulated.invoke(simulated.routes["$disconnect"], event)["statusCode"] == 200
        assert simulated.connect(C) == 200
        assert simulated.send(C, frame("resume", {"session": session}))["recovered"] is True
        (recovered,) = management_api.events(C, "analytics:liveMetrics")
        assert [metric["value"] for metric in recovered["data"][3:]] == [37, 62]
        assert cloudwatch_actions(simulated) == {PUBLISHER}
        assert_least_privilege(simulated)
    finally:
        reset_services()


def test_stack_simulation_reported_metrics_arrive_keep_their_order_and_expire(
    simulated: SimulatedStack, management_api: ManagementApiEndpoint
):
    assert simulated.connect(A) == 200
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    for name, value in [("Queue depth", 12), ("Orders per minute", 42.5), ("Errors", 0)]:
        assert simulated.put_event(metric_report(name, value)) == {"name": name, "value": value}
    assert simulated.schedule(remaining_ms=2500)["pushes"] == 1
    assert metrics(management_api.events(A)[-1], "Errors", "Orders per minute", "Queue depth") == (1, 1, 0)
    assert simulated.send(A, frame("analytics:requestLiveMetrics")) == {"ok": True}
    asked, pushed = (
        [(metric["name"], metric["value"]) for metric in message["data"][3:]]
        for message in management_api.events(A)[-1:-3:-1]
    )
    assert asked == pushed == [("Errors", 0), ("Orders per minute", 42.5), ("Queue depth", 12)]
    # Errors is reported again 200 s later; 350 s later the others are older than ReportedMetricMaxAgeSeconds
    # (300): they leave the snapshot, Errors stays.
    now = time.time()
    simulated._container("ReportMetricFunction").table.clock = lambda: now + 200
    assert simulated.put_event(metric_report("Errors", 1)) == {"name": "Errors", "value": 1}
    simulated._container(PUBLISHER).table.clock = lambda: now + 350
    assert simulated.schedule(remaining_ms=2500)["pushes"] == 1
    assert metrics(management_api.events(A)[-1], "Errors") == (1, 1, 0)
    assert_least_privilege(simulated)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Queue depth", float("nan")),
        ("Queue depth", "12"),
        ("x" * 10_240, 1),
        ("CPU Usage", 50),  # a built-in name: SystemMetricsSource is none
    ],
    ids=["nan", "string", "10-KB-name", "built-in"],
)
def test_stack_simulation_a_hostile_report_is_refused_and_stores_nothing(simulated: SimulatedStack, name, value):
    assert simulated.put_event(metric_report("Queue depth", 1))["name"] == "Queue depth"
    before = simulated.scan()
    assert "error" in simulated.put_event(metric_report(name, value))
    assert simulated.scan() == before
    assert_least_privilege(simulated)


def test_stack_simulation_the_reported_source_takes_cpu_and_memory_from_the_services(
    moto_endpoint: str, management_api: ManagementApiEndpoint
):
    simulated = simulated_stack(moto_endpoint, management_api, {"SystemMetricsSource": "reported"})
    try:
        assert simulated.connect(A) == 200
        assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
        for name, value in [("Zebras", 3), ("Memory Usage", 40.4), ("CPU Usage", 71)]:
            assert simulated.put_event(metric_report(name, value))["name"] == name
        assert simulated.schedule(remaining_ms=2500)["pushes"] == 1
        pushed = management_api.events(A)[-1]
        assert metrics(pushed, *METRIC_NAMES[3:], "Zebras") == (1, 1, 0)
        assert [metric["value"] for metric in pushed["data"][3:]] == [71, 40, 3]
        assert cloudwatch_actions(simulated) == set()
    finally:
        reset_services()
