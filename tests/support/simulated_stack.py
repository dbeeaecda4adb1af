"""The stack of template.yaml simulated: its table in moto, each function a warm container with the environment
the template gives it, invoked with the events API Gateway, EventBridge and Lambda would send, a real Management
API endpoint; every DynamoDB call, Lambda invocation and @connections request each function makes recorded, to
be checked against the IAM grants the template gives it."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import uuid
from collections import defaultdict
from typing import Any
from unittest import mock
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse

from local_gateway.dynamodb.embedded import ensure_table
from local_gateway.template import Template
from shared.clients import dynamodb_client
from shared.config import Config
from shared.contract import COUNT_METRIC_NAMES
from shared.services import Services, reset_services
from tests import stack
from tests.support.events import connect_event, disconnect_event, load_event
from tests.support.management_api import ManagementApiEndpoint

PUBLISHER, RECONCILER = "PublishMetricsFunction", "ReconcileFunction"  # each on a schedule of its own
A, B, C, D = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC=", "DDDDDDDDDDDDDDD="
S, T, U = "SSSSSSSSSSSSSSS=", "TTTTTTTTTTTTTTT=", "UUUUUUUUUUUUUUU="
SOCKETIO_QUERY = {"EIO": "4", "transport": "websocket"}


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


def assert_least_privilege(simulated: SimulatedStack) -> None:
    """Least privilege, from the other side: every call each function made is one its role allows."""
    for logical_id, calls in simulated.calls.items():
        granted = stack.grants(simulated.template, logical_id, simulated.refs)
        denied = sorted({call for call in calls if not stack.allows(granted, *call)})
        assert denied == [], f"{logical_id} would be denied {denied}"


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
