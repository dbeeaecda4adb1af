"""template.yaml read statically: routes, functions, table, schedule, least privilege, parameters and outputs."""

from __future__ import annotations

import importlib
import uuid

import pytest

from local_gateway.dynamodb.embedded import ensure_table
from local_gateway.template import Template
from shared.clients import dynamodb_client
from shared.config import Config
from tests import stack

TEMPLATE = Template.load()
FUNCTIONS = stack.functions(TEMPLATE)
REFS = stack.local_refs(TEMPLATE, "analytics-table")
HOST = f"{stack.API_ID}.execute-api.{stack.REGION}.amazonaws.com/{stack.STAGE}"
ROUTE_RESPONSE = "AWS::ApiGatewayV2::RouteResponse"
EVENTS = [
    "analytics:subscribeLiveMetrics",
    "analytics:unsubscribeLiveMetrics",
    "analytics:requestLiveMetrics",
    "analytics:joinDashboard",
    "analytics:leaveDashboard",
    "resume",  # JSON frames' connection state recovery (Socket.IO clients recover in their CONNECT)
]

# Least privilege, read off the code: what each function's path through shared/ calls. Every message function
# also takes a rate-limit token (UpdateItem on its connection item, in CLEANUP).
TABLE = stack.table_arn("analytics-table")
CLEANUP = {  # Store.remove_connection, for a connection that answered 410 Gone (or for $disconnect)
    ("dynamodb:DeleteItem", TABLE),
    ("dynamodb:UpdateItem", TABLE),
    ("dynamodb:BatchWriteItem", TABLE),
    ("dynamodb:Query", f"{TABLE}/index/ByConnection"),
}
POST = {("execute-api:ManageConnections", stack.connection_arn("*"))}
# CPU and memory from CloudWatch (SystemMetricsSource=cloudwatch). GetMetricData supports no resource-level
# permission, so "*" is its only resource: the one "*" allowed, to the publisher alone.
CLOUDWATCH_READ = ("cloudwatch:GetMetricData", "*")
EXPECTED_GRANTS = {
    # A Socket.IO $connect has its open packet posted by SocketIOOpenFunction, invoked asynchronously.
    "ConnectFunction": {
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("lambda:InvokeFunction", stack.function_arn("SocketIOOpenFunction")),
    },
    # GetItem: a deliberate leave of a connection already removed reads its session's pointer.
    "DisconnectFunction": CLEANUP | {("dynamodb:GetItem", TABLE)},
    # Every Socket.IO frame: the namespace handshake (registration, or a refusal that closes the connection)
    # and all five events through the command table.
    # A CONNECT with a `pid` recovers a session as ResumeFunction does.
    "DefaultFunction": CLEANUP
    | POST
    | {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:BatchGetItem", TABLE),  # a snapshot: the counters, the latest tick, the reported metrics
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:Query", TABLE),
        ("execute-api:ManageConnections", stack.connection_arn("*", "DELETE")),
    },
    # The session's GetItem, its PutItem (a new one) or claim (UpdateItem), the rejoins' PutItems, the history's
    # Query; taking over a half-open connection closes it (DELETE).
    "ResumeFunction": CLEANUP
    | POST
    | {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:BatchGetItem", TABLE),  # a restored subscription's snapshot
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:Query", TABLE),
        ("execute-api:ManageConnections", stack.connection_arn("*", "DELETE")),
    },
    "SocketIOOpenFunction": CLEANUP | POST,
    # The snapshot: the counters (GetItem) while the latest tick is remembered, else one BatchGetItem of the
    # counters, the latest tick and the reported metrics.
    "SubscribeLiveMetricsFunction": CLEANUP | POST | {("dynamodb:GetItem", TABLE), ("dynamodb:BatchGetItem", TABLE)},
    "UnsubscribeLiveMetricsFunction": CLEANUP | POST,
    "RequestLiveMetricsFunction": CLEANUP | POST | {("dynamodb:GetItem", TABLE), ("dynamodb:BatchGetItem", TABLE)},
    # PutItem of the membership, UpdateItem of the connection, DeleteItem of a refused join's membership (in
    # CLEANUP); GetItem tells "already a member" from "not registered", and whether an update that failed landed.
    # Query: the history's latest update, delivered on join.
    "JoinDashboardFunction": CLEANUP
    | POST
    | {("dynamodb:GetItem", TABLE), ("dynamodb:PutItem", TABLE), ("dynamodb:Query", TABLE)},
    # UpdateItem of the connection, then DeleteItem of the membership: both already in CLEANUP.
    "LeaveDashboardFunction": CLEANUP | POST,
    # Query on the table: the Socket.IO partition the heartbeat pings.
    "PublishMetricsFunction": CLEANUP
    | POST
    | {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:Query", TABLE),
        ("dynamodb:Query", f"{TABLE}/index/ByLiveKind"),
        ("lambda:InvokeFunction", stack.function_arn("FanoutWorkerFunction")),  # slices past FANOUT_SLICE_SIZE
        CLOUDWATCH_READ,
    },
    "FanoutWorkerFunction": CLEANUP | POST,
    # Its own schedule: counter items and its place; counts and lists by Query, never Scan; asks API Gateway
    # whether each connection is still there (GET, never a post) and removes the gone ones.
    "ReconcileFunction": CLEANUP
    | {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:Query", TABLE),
        ("dynamodb:Query", f"{TABLE}/index/ByLiveKind"),
        ("execute-api:ManageConnections", stack.connection_arn("*", "GET")),
    },
    # The history's latest (Query) and next update (PutItem), the members (Query).
    "PublishDashboardUpdateFunction": CLEANUP | POST | {("dynamodb:Query", TABLE), ("dynamodb:PutItem", TABLE)},
    # METRICS/REPORTED's conditional UpdateItems (set, create, prune); it reads nothing else and posts nothing.
    "ReportMetricFunction": {("dynamodb:UpdateItem", TABLE)},
}


def props(logical_id: str) -> dict:
    return TEMPLATE.resources[logical_id]["Properties"]


def test_template_routes_every_client_event_to_its_own_function():
    routes = TEMPLATE.route_functions()
    assert set(routes) == {"$connect", "$disconnect", "$default", *EVENTS}
    assert len(set(routes.values())) == len(routes)
    assert props("WebSocketApi")["ProtocolType"] == "WEBSOCKET"
    assert props("WebSocketApi")["RouteSelectionExpression"] == "$request.body.action"


def test_template_every_route_handler_is_an_importable_callable():
    for route, dotted in TEMPLATE.routes().items():
        module, name = dotted.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), route


def test_template_every_function_handler_is_an_importable_callable():
    for logical_id in FUNCTIONS:
        module, name = TEMPLATE.function_handler(logical_id).rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), logical_id


def test_template_integrations_are_lambda_proxies_with_permissions():
    routes = TEMPLATE.route_functions()
    permissions = {
        p["Properties"]["FunctionName"]["Ref"]: p["Properties"]
        for p in TEMPLATE.of_type("AWS::Lambda::Permission").values()
    }
    for integration in TEMPLATE.of_type("AWS::ApiGatewayV2::Integration").values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    for function in routes.values():
        assert permissions[function]["Principal"] == "apigateway.amazonaws.com"
        assert stack.resolve(permissions[function]["SourceArn"], REFS).startswith(
            f"arn:aws:execute-api:{stack.REGION}:{stack.ACCOUNT}:{stack.API_ID}/{stack.STAGE}/"
        )


def test_template_event_routes_answer_with_a_route_response():
    responses = {r["Properties"]["RouteId"]["Ref"] for r in TEMPLATE.of_type(ROUTE_RESPONSE).values()}
    for name, route in TEMPLATE.of_type("AWS::ApiGatewayV2::Route").items():
        two_way = route["Properties"]["RouteKey"] in (*EVENTS, "$default")
        assert (name in responses) == two_way, name
        assert (route["Properties"].get("RouteResponseSelectionExpression") == "$default") == two_way, name


def test_template_deployment_waits_for_every_route_and_route_response():
    (deployment,) = TEMPLATE.of_type("AWS::ApiGatewayV2::Deployment").values()
    routes = TEMPLATE.of_type("AWS::ApiGatewayV2::Route").keys() | TEMPLATE.of_type(ROUTE_RESPONSE).keys()
    assert set(deployment["DependsOn"]) == routes


def test_template_stage_throttles_and_logs_access():
    stage = props("Stage")
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["AccessLogGroup", "Arn"]}
    assert "$context.connectionId" in stage["AccessLogSettings"]["Format"]
    assert props("AccessLogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_template_functions_run_arm64_on_a_current_python():
    function = TEMPLATE.body["Globals"]["Function"]
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    for logical_id in FUNCTIONS:
        assert {"Runtime", "Architectures", "CodeUri"}.isdisjoint(props(logical_id)), logical_id
        assert TEMPLATE.resources[logical_id]["Metadata"] == {"BuildMethod": "makefile"}


def test_template_publisher_outlives_its_window():
    publisher = props("PublishMetricsFunction")
    window = float(publisher["Environment"]["Variables"]["PUBLISH_WINDOW_SECONDS"])
    assert publisher["Timeout"] >= window + 20  # the last tick starts before the window ends; its fan-out finishes
    assert publisher["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    default_timeout = TEMPLATE.body["Globals"]["Function"]["Timeout"]
    for logical_id in TEMPLATE.route_functions().values():
        assert props(logical_id).get("Timeout", default_timeout) <= 29  # API Gateway's integration limit


def test_template_every_function_logs_to_its_own_group_with_retention():
    groups = set()
    for logical_id in FUNCTIONS:
        group = props(logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
        assert props(group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert stack.resolve(props(group)["LogGroupName"], REFS).startswith("/aws/lambda/")
        groups.add(group)
    assert len(groups) == len(FUNCTIONS)
    assert TEMPLATE.body["Globals"]["Function"]["LoggingConfig"]["LogFormat"] == "JSON"


def test_template_gives_every_function_the_environment_of_the_design():
    for logical_id in FUNCTIONS:
        env = stack.environment(TEMPLATE, logical_id, REFS)
        config = Config.from_env(env)
        assert config.table_name == "analytics-table"
        assert config.connections_endpoint_url == f"https://{HOST}"
        assert config.metrics_interval_seconds == 5
        assert "DYNAMODB_ENDPOINT_URL" not in env


def test_template_the_reconciler_asks_about_a_connection_only_once_its_connect_has_returned():
    """API Gateway answers 410 for a connection until its `$connect` has returned (at most the integration's
    timeout), and a JSON connection is registered inside its `$connect`: asked sooner, it would be removed."""
    config = Config.from_env(stack.environment(TEMPLATE, "ReconcileFunction", REFS))
    connect_timeout = props("ConnectIntegration")["TimeoutInMillis"] / 1000
    assert config.connections_endpoint_url == f"https://{HOST}"  # whom it asks
    assert config.reconcile_check_after_seconds > connect_timeout
    assert config.reconcile_check_after_seconds >= config.reconcile_settle_seconds
    assert config.reconcile_check_batch >= 1


def test_template_table_has_ttl_on_demand_billing_recovery_and_encryption():
    table = props("Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_template_table_is_the_one_the_tests_and_the_gateway_create(moto_endpoint):
    name = f"analytics-{uuid.uuid4().hex[:8]}"
    client = dynamodb_client(Config.from_env({"TABLE_NAME": name, "DYNAMODB_ENDPOINT_URL": moto_endpoint}))
    ensure_table(client, name, TEMPLATE)
    created = client.describe_table(TableName=name)["Table"]
    table = props("Table")

    def index(i: dict) -> tuple:
        projection = i["Projection"]
        keys = tuple((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"])
        return i["IndexName"], keys, projection["ProjectionType"], tuple(sorted(projection.get("NonKeyAttributes", [])))

    def attributes(definitions: list[dict]) -> list[tuple]:
        return sorted((a["AttributeName"], a["AttributeType"]) for a in definitions)

    assert attributes(created["AttributeDefinitions"]) == attributes(table["AttributeDefinitions"])
    assert created["KeySchema"] == table["KeySchema"]
    assert sorted(map(index, created["GlobalSecondaryIndexes"])) == sorted(map(index, table["GlobalSecondaryIndexes"]))
    assert created["BillingModeSummary"]["BillingMode"] == table["BillingMode"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")


def test_template_table_serves_the_indexes_the_store_queries():
    from shared import table

    names = {index["IndexName"] for index in props("Table")["GlobalSecondaryIndexes"]}
    assert names == {table.BY_CONNECTION_INDEX, table.BY_LIVE_KIND_INDEX}


def test_template_schedules_the_publisher_every_minute():
    events = props("PublishMetricsFunction")["Events"]
    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(1 minute)"]
    # The reconciler has a schedule of its own: a recount never runs inside a tick.
    assert stack.functions_with_event(TEMPLATE, "Schedule") == ["PublishMetricsFunction", "ReconcileFunction"]
    events = props("ReconcileFunction")["Events"]
    assert [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"] == ["rate(1 minute)"]


def test_template_routes_dashboard_updates_from_eventbridge():
    (rule,) = props("PublishDashboardUpdateFunction")["Events"].values()
    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["Pattern"] == {"source": ["analytics"], "detail-type": ["DashboardUpdate"]}


def test_template_routes_metric_reports_from_eventbridge_to_a_function_of_their_own():
    (rule,) = props("ReportMetricFunction")["Events"].values()
    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["Pattern"] == {"source": ["analytics"], "detail-type": ["MetricReport"]}
    assert "EventBusName" not in rule["Properties"]  # the default bus, where `aws events put-events` sends
    assert TEMPLATE.handler_for_rule("analytics", "MetricReport") == "handlers.report_metric.handler"
    assert TEMPLATE.handler_for_rule("analytics", "DashboardUpdate") == "handlers.publish_dashboard_update.handler"


def test_template_leaves_cpu_and_memory_out_until_a_source_is_configured():
    """Deployed with the defaults, no function reads a system's CPU or memory: none of a sandbox's own."""
    assert TEMPLATE.body["Parameters"]["SystemMetricsSource"]["AllowedValues"] == ["none", "cloudwatch", "reported"]
    for logical_id in FUNCTIONS:
        assert Config.from_env(stack.environment(TEMPLATE, logical_id, REFS)).system_metrics.source == "none"


@pytest.mark.parametrize("logical_id", sorted(EXPECTED_GRANTS))
def test_template_grants_each_function_exactly_what_its_code_uses(logical_id):
    assert stack.grants(TEMPLATE, logical_id, REFS) == EXPECTED_GRANTS[logical_id]


def test_template_grants_every_function_a_table_of_its_own_list():
    assert set(EXPECTED_GRANTS) == set(FUNCTIONS)


def test_template_lets_only_posting_functions_manage_this_apis_connections():
    for logical_id in FUNCTIONS:
        granted = stack.grants(TEMPLATE, logical_id, REFS)
        manage = {resource for action, resource in granted if action.startswith("execute-api:")}
        posts = logical_id not in ("ConnectFunction", "DisconnectFunction", "ReconcileFunction", "ReportMetricFunction")
        # A refused Socket.IO handshake closes its connection; a recovery closes the half-open one it takes over.
        closes = logical_id in ("DefaultFunction", "ResumeFunction")
        asks = logical_id == "ReconcileFunction"  # is each connection still there? (GET @connections/{id})
        expected = (
            ({stack.connection_arn("*")} if posts else set())
            | ({stack.connection_arn("*", "DELETE")} if closes else set())
            | ({stack.connection_arn("*", "GET")} if asks else set())
        )
        assert manage == expected, logical_id
        anywhere = {(action, resource) for action, resource in granted if "*" in action or resource == "*"}
        assert anywhere == ({CLOUDWATCH_READ} if logical_id == "PublishMetricsFunction" else set()), logical_id


def test_template_parameters_and_outputs():
    assert set(TEMPLATE.body["Parameters"]) >= {"StageName", "MetricsIntervalSeconds", "LogRetentionDays"}
    outputs = {name: stack.resolve(o["Value"], REFS) for name, o in TEMPLATE.body["Outputs"].items()}
    assert outputs == {
        "WebSocketUrl": f"wss://{HOST}",
        "ConnectionsEndpoint": f"https://{HOST}",
        "TableName": "analytics-table",
    }
