"""The live metrics' definitions (docs/metrics.md): where CPU Usage and Memory Usage come from, reported metrics,
and one snapshot per tick that a request and a subscribe agree with. Functions called as AWS calls them, on moto
(DynamoDB and CloudWatch)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers import connect, publish_metrics, report_metric, request_live_metrics, subscribe_live_metrics
from shared import metrics, publisher
from shared.config import Config
from shared.contract import COUNT_METRIC_NAMES, METRIC_NAMES
from shared.counters import Counts
from shared.env_values import ConfigError
from shared.services import Services, reset_services
from shared.system_metrics import PRIMING_SECONDS, HostReader, percent
from tests.support.cloudwatch import cloudwatch_metrics
from tests.support.events import connect_event, load_event, message_event

ROOT = Path(__file__).resolve().parent.parent
A, B = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="


def configured(lambda_env: Services, **environment: str) -> Services:
    """The functions' collaborators with these metric settings too, on the same table."""
    read = Config.from_env({"TABLE_NAME": lambda_env.config.table_name, **environment})
    changed = ("system_metrics", "cloudwatch_endpoint_url", "reported_metric_max_age_seconds", "reported_metrics_max")
    config = dataclasses.replace(lambda_env.config, **{name: getattr(read, name) for name in changed})
    svc = Services.from_config(config, dynamodb=lambda_env.table.client)
    reset_services(svc)
    return svc


def report(name: object, value: object, **detail: object) -> dict:
    event = load_event("metric_report", detail={"name": name, "value": value, **detail})
    return report_metric.handler(event, None)


def names(snapshot: list[dict]) -> list[str]:
    return [metric["name"] for metric in snapshot]


def values(snapshot: list[dict]) -> dict[str, float]:
    return {metric["name"]: metric["value"] for metric in snapshot}


def reported_item(svc: Services) -> dict | None:
    return svc.table.get(svc.reported.key, consistent=True)


@pytest.fixture
def subscriber(lambda_env: Services, management_api) -> Iterator[str]:
    assert connect.handler(connect_event(A), None)["statusCode"] == 200
    yield A


def subscribe(cid: str) -> None:
    assert (
        subscribe_live_metrics.handler(message_event(cid, "analytics:subscribeLiveMetrics"), None)["statusCode"] == 200
    )


def request(management_api, cid: str) -> list[dict]:
    assert request_live_metrics.handler(message_event(cid, "analytics:requestLiveMetrics"), None)["statusCode"] == 200
    return management_api.events(cid, "analytics:liveMetrics")[-1]["data"]


# -- settings ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SYSTEM_METRICS_SOURCE": "psutil"}, "SYSTEM_METRICS_SOURCE must be host, cloudwatch, reported or none"),
        ({"SYSTEM_METRICS_SOURCE": "cloudwatch"}, "SYSTEM_METRICS_SOURCE=cloudwatch needs SYSTEM_METRICS_NAMESPACE"),
        (
            {"SYSTEM_METRICS_SOURCE": "host", "AWS_LAMBDA_FUNCTION_NAME": "f"},
            "SYSTEM_METRICS_SOURCE=host would show a Lambda sandbox's own CPU and memory",
        ),
        ({"SYSTEM_METRICS_DIMENSIONS": "ClusterName"}, "SYSTEM_METRICS_DIMENSIONS must be 1 to 30 Name=Value pairs"),
        (
            {"SYSTEM_METRICS_DIMENSIONS": ",".join(f"D{n}=v" for n in range(31))},
            "SYSTEM_METRICS_DIMENSIONS must be 1 to 30 Name=Value pairs",
        ),
        ({"REPORTED_METRICS_MAX": "201"}, "REPORTED_METRICS_MAX must be a whole number from 1 to 200"),
        ({"REPORTED_METRICS_MAX": "2.5"}, "REPORTED_METRICS_MAX must be a whole number from 1 to 200"),
        ({"REPORTED_METRIC_MAX_AGE_SECONDS": "0"}, "REPORTED_METRIC_MAX_AGE_SECONDS must be at least 1"),
    ],
)
def test_metric_settings_refuse_a_bad_value_in_one_line(environment, message):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"TABLE_NAME": "t", **environment})
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_metric_settings_default_to_the_host_locally_and_to_none_on_lambda():
    local = Config.from_env({"TABLE_NAME": "t"})
    assert local.system_metrics.source == "host"
    assert (local.reported_metric_max_age_seconds, local.reported_metrics_max) == (300.0, 20)
    assert Config.from_env({"TABLE_NAME": "t", "AWS_LAMBDA_FUNCTION_NAME": "f"}).system_metrics.source == "none"
    cloudwatch = Config.from_env(
        {
            "TABLE_NAME": "t",
            "SYSTEM_METRICS_SOURCE": "CloudWatch",
            "SYSTEM_METRICS_NAMESPACE": "AWS/ECS",
            "SYSTEM_METRICS_DIMENSIONS": "ClusterName=prod, ServiceName=web",
        }
    ).system_metrics
    assert (cloudwatch.source, cloudwatch.cpu_metric, cloudwatch.memory_metric) == (
        "cloudwatch",
        "CPUUtilization",
        "MemoryUtilization",
    )
    assert cloudwatch.dimensions == (("ClusterName", "prod"), ("ServiceName", "web"))


# -- the host ------------------------------------------------------------------------------------------------
def test_the_first_host_reading_measures_an_interval_of_its_own():
    """psutil's first cpu_percent has no baseline; the load average once stood in (100 on a busy machine)."""
    times = namedtuple("times", "user system idle iowait")
    cpu = iter([times(10, 10, 80, 0), times(11, 10, 99, 0)])  # before and after the priming: 1 of 20 s busy
    slept: list[float] = []
    host = HostReader(lambda: next(cpu), lambda: 50.0, sleep=slept.append)
    assert host.percents() == {"CPU Usage": 5, "Memory Usage": 50}
    assert slept == [PRIMING_SECONDS] == [0.2]
    sources = "".join(path.read_text() for path in (ROOT / "shared").glob("*.py"))
    assert "getloadavg" not in sources and "cpu_percent(" not in sources


def test_a_reading_is_an_integer_percent_from_0_to_100():
    assert [percent(value) for value in (-3, 0.4, 37.5, 61.6, 100.2, 150)] == [0, 0, 38, 62, 100, 100]


def test_the_host_reading_with_psutil_is_a_percent():
    reading = HostReader().percents()
    assert set(reading) == {"CPU Usage", "Memory Usage"} and all(0 <= value <= 100 for value in reading.values())


def test_locally_the_snapshot_holds_the_five_built_in_metrics(lambda_env, subscriber, management_api):
    subscribe(subscriber)
    (pushed,) = management_api.events(subscriber, "analytics:liveMetrics")
    assert names(pushed["data"]) == list(METRIC_NAMES)


# -- CloudWatch ----------------------------------------------------------------------------------------------
def test_cloudwatch_feeds_cpu_and_memory_read_at_most_once_a_minute(
    lambda_env, subscriber, management_api, cloudwatch_endpoint
):
    svc = configured(lambda_env, **cloudwatch_metrics(cloudwatch_endpoint, cpu=37.4, memory=61.6))
    reader = svc.system_metrics.cloudwatch
    assert reader is not None
    calls: list[str] = []
    reader.client.meta.events.register("before-call.cloudwatch", lambda model, **_: calls.append(model.name))
    subscribe(subscriber)
    for _ in range(3):
        publisher.tick(svc, svc.poster())
    pushed = management_api.events(subscriber, "analytics:liveMetrics")
    assert [values(p["data"]).get("CPU Usage") for p in pushed] == [None, 37, 37, 37]  # none on subscribe: no tick
    assert values(pushed[-1]["data"])["Memory Usage"] == 62
    assert calls == ["GetMetricData"]  # the later ticks: the first one's reading
    start = reader.clock()
    reader.clock = lambda: start + 59
    publisher.tick(svc, svc.poster())
    reader.clock = lambda: start + 60
    publisher.tick(svc, svc.poster())
    assert calls == ["GetMetricData"] * 2


def test_cloudwatch_without_a_recent_datapoint_or_answer_leaves_cpu_and_memory_out(
    lambda_env, subscriber, management_api, cloudwatch_endpoint, caplog
):
    old = configured(lambda_env, **cloudwatch_metrics(cloudwatch_endpoint, cpu=20, memory=30, age_seconds=3600))
    subscribe(subscriber)
    publisher.tick(old, old.poster())
    assert names(management_api.events(subscriber, "analytics:liveMetrics")[-1]["data"]) == list(COUNT_METRIC_NAMES)
    unreachable = configured(
        lambda_env, **{**cloudwatch_metrics(cloudwatch_endpoint, 1, 1), "CLOUDWATCH_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    with caplog.at_level(logging.WARNING):
        publisher.tick(unreachable, unreachable.poster())
    assert names(management_api.events(subscriber, "analytics:liveMetrics")[-1]["data"]) == list(COUNT_METRIC_NAMES)
    assert "CloudWatch GetMetricData failed" in caplog.text


def test_cloudwatch_leaves_out_a_metric_without_a_datapoint(
    lambda_env, subscriber, management_api, cloudwatch_endpoint
):
    settings = cloudwatch_metrics(cloudwatch_endpoint, cpu=20, memory=30)
    svc = configured(lambda_env, **settings, SYSTEM_METRICS_MEMORY_METRIC="NoSuchMetric")
    subscribe(subscriber)
    publisher.tick(svc, svc.poster())
    pushed = management_api.events(subscriber, "analytics:liveMetrics")[-1]["data"]
    assert names(pushed) == [*COUNT_METRIC_NAMES, "CPU Usage"] and values(pushed)["CPU Usage"] == 20


def test_a_failed_cloudwatch_call_is_not_repeated_within_the_minute(lambda_env, subscriber, cloudwatch_endpoint):
    settings = {**cloudwatch_metrics(cloudwatch_endpoint, 1, 1), "CLOUDWATCH_ENDPOINT_URL": "http://127.0.0.1:9"}
    svc = configured(lambda_env, **settings)
    reader = svc.system_metrics.cloudwatch
    assert reader is not None
    calls: list[str] = []
    reader.client.meta.events.register("before-call.cloudwatch", lambda model, **_: calls.append(model.name))
    subscribe(subscriber)
    for _ in range(2):
        publisher.tick(svc, svc.poster())
    assert calls == ["GetMetricData"]


def test_cloudwatch_is_read_only_by_a_tick_that_pushes(lambda_env, management_api, cloudwatch_endpoint):
    svc = configured(lambda_env, **cloudwatch_metrics(cloudwatch_endpoint, 1, 1))
    reader = svc.system_metrics.cloudwatch
    assert reader is not None
    calls: list[str] = []
    reader.client.meta.events.register("before-call.cloudwatch", lambda model, **_: calls.append(model.name))
    assert json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])["pushes"] == 0  # nobody
    assert calls == []


def test_without_a_fresh_tick_a_request_never_calls_cloudwatch(
    lambda_env, subscriber, management_api, cloudwatch_endpoint
):
    svc = configured(lambda_env, **cloudwatch_metrics(cloudwatch_endpoint, cpu=37, memory=61))
    reader = svc.system_metrics.cloudwatch
    assert reader is not None
    calls: list[str] = []
    reader.client.meta.events.register("before-call.cloudwatch", lambda model, **_: calls.append(model.name))
    subscribe(subscriber)
    assert names(request(management_api, subscriber)) == list(COUNT_METRIC_NAMES)
    assert names(management_api.events(subscriber, "analytics:liveMetrics")[0]["data"]) == list(COUNT_METRIC_NAMES)
    assert calls == []


# -- one snapshot per tick -----------------------------------------------------------------------------------
def test_a_push_a_subscribe_and_a_request_in_one_period_agree(lambda_env, subscriber, management_api, monkeypatch):
    readings = iter([{"CPU Usage": 11, "Memory Usage": 22}, {"CPU Usage": 99, "Memory Usage": 98}])
    monkeypatch.setattr(lambda_env.system_metrics.host, "percents", lambda: next(readings))
    assert connect.handler(connect_event(B), None)["statusCode"] == 200
    subscribe(subscriber)  # no tick yet: its own reading (11, 22)
    publisher.tick(lambda_env, lambda_env.poster())  # the tick's reading: (99, 98), then nothing more to read
    subscribe(B)
    # Another sandbox, which remembers nothing: it reads the tick from the table.
    reset_services(Services.from_config(lambda_env.config, dynamodb=lambda_env.table.client))
    asked = request(management_api, B)
    pushed = management_api.events(subscriber, "analytics:liveMetrics")[-1]["data"]
    subscribed = management_api.events(B, "analytics:liveMetrics")[0]["data"]
    for snapshot in (pushed, subscribed, asked):
        assert {name: values(snapshot)[name] for name in ("CPU Usage", "Memory Usage")} == {
            "CPU Usage": 99,
            "Memory Usage": 98,
        }
    assert values(asked)["Live Subscribers"] == 2 and values(pushed)["Live Subscribers"] == 1  # counts as of now


def test_a_tick_two_periods_old_is_no_longer_the_latest(lambda_env, subscriber, management_api, monkeypatch):
    subscribe(subscriber)
    publisher.tick(lambda_env, lambda_env.poster())
    other = Services.from_config(lambda_env.config, dynamodb=lambda_env.table.client)
    period = lambda_env.config.metrics_interval_seconds
    stored = lambda_env.snapshots.last_saved()
    assert stored is not None
    item = other.table.get(other.snapshots.key)
    other.snapshots.clock = lambda: stored[0] + 1.9 * period
    assert other.snapshots.readings(item) is not None
    other.snapshots.clock = lambda: stored[0] + 2 * period
    assert other.snapshots.readings(item) is None


def test_the_snapshot_order_is_written_once():
    counts = Counts(active_users=3, subscribers=2, active_dashboards=1)
    snapshot = metrics.snapshot(counts, [("CPU Usage", 5), ("Memory Usage", 6), ("b", 1)], now=0)
    assert names(snapshot) == [*METRIC_NAMES, "b"] and len({m["timestamp"] for m in snapshot}) == 1
    assert re.fullmatch(r"1970-01-01T00:00:00\.000Z", snapshot[0]["timestamp"])


# -- reported metrics ----------------------------------------------------------------------------------------
def test_reported_metrics_follow_the_built_in_ones_by_name(lambda_env, subscriber, management_api):
    for name, value in [("Queue depth", 12), ("Orders per minute", 42.5), ("Errors", -1)]:
        assert report(name, value)["statusCode"] == 200
    subscribe(subscriber)
    publisher.tick(lambda_env, lambda_env.poster())
    for snapshot in (
        management_api.events(subscriber, "analytics:liveMetrics")[-1]["data"],
        request(management_api, A),
    ):
        assert names(snapshot) == [*METRIC_NAMES, "Errors", "Orders per minute", "Queue depth"]
        assert values(snapshot)["Orders per minute"] == 42.5 and values(snapshot)["Errors"] == -1
    assert report("Queue depth", 7)["statusCode"] == 200  # a new value replaces the old
    assert lambda_env.reported.read()["Queue depth"] == 7
    assert [report(name, value)["statusCode"] for name, value in [("Big", 10**15), ("Small", -(10**15))]] == [200, 200]


def test_a_report_costs_one_update_and_the_first_one_two(lambda_env):
    writes: list[str] = []
    lambda_env.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: writes.append(model.name))
    assert report("Queue depth", 1)["statusCode"] == 200
    assert writes == ["UpdateItem", "UpdateItem"]  # the nested SET finds no map; the map is created
    writes.clear()
    assert [report(name, 2)["statusCode"] for name in ("Queue depth", "Errors")] == [200, 200]
    assert writes == ["UpdateItem", "UpdateItem"]


def test_a_reported_metric_leaves_the_snapshot_once_older_than_the_bound(lambda_env, subscriber, management_api):
    svc = configured(lambda_env, REPORTED_METRIC_MAX_AGE_SECONDS="60")
    now = [time.time()]
    svc.table.clock = lambda: now[0]
    assert report("Queue depth", 12)["statusCode"] == 200
    now[0] += 59
    assert "Queue depth" in names(request(management_api, subscriber))
    now[0] += 2
    assert "Queue depth" not in names(request(management_api, subscriber))
    item = reported_item(svc)
    assert item is not None and int(item["expiresAt"]["N"]) == int(now[0] - 61) + 60 + 3600  # an hour after stale


def test_the_number_of_names_is_capped_and_stale_ones_make_room(lambda_env):
    svc = configured(lambda_env, REPORTED_METRICS_MAX="2", REPORTED_METRIC_MAX_AGE_SECONDS="60")
    now = [time.time()]
    svc.table.clock = lambda: now[0]
    assert [report(name, 1)["statusCode"] for name in ("a", "b")] == [200, 200]
    before = reported_item(svc)
    refused = report("c", 1)
    assert refused["statusCode"] == 400
    assert json.loads(refused["body"]) == {"error": "At most 2 metrics are kept at once; this would be one more"}
    assert reported_item(svc) == before
    assert report("a", 2)["statusCode"] == 200  # a name already kept is no more
    now[0] += 61  # a and b are stale now: pruned to make room
    assert report("c", 3)["statusCode"] == 200
    assert svc.reported.read() == {"c": 3}
    assert set(reported_item(svc)["metrics"]["M"]) == {"c"}


def test_cpu_and_memory_can_be_reported_when_the_source_is_reported(lambda_env, subscriber, management_api):
    configured(lambda_env, SYSTEM_METRICS_SOURCE="reported")
    assert names(request(management_api, subscriber)) == list(COUNT_METRIC_NAMES)  # none reported yet
    assert [report(name, value)["statusCode"] for name, value in [("Memory Usage", 40.6), ("CPU Usage", 7)]] == [
        200,
        200,
    ]
    assert report("Zebras", 3)["statusCode"] == 200
    assert report("CPU Usage", 100.5)["statusCode"] == 400
    snapshot = request(management_api, subscriber)
    assert names(snapshot) == [*METRIC_NAMES, "Zebras"]
    assert (values(snapshot)["CPU Usage"], values(snapshot)["Memory Usage"]) == (7, 41)


def test_the_none_source_leaves_cpu_and_memory_out(lambda_env, subscriber, management_api):
    configured(lambda_env, SYSTEM_METRICS_SOURCE="none")
    subscribe(subscriber)
    assert names(management_api.events(subscriber, "analytics:liveMetrics")[-1]["data"]) == list(COUNT_METRIC_NAMES)
    assert report("Queue depth", 1)["statusCode"] == 200
    assert names(request(management_api, subscriber)) == [*COUNT_METRIC_NAMES, "Queue depth"]


HOSTILE = [
    ("a", float("nan"), "value must be a finite number from -1e15 to 1e15"),
    ("a", float("inf"), "value must be a finite number from -1e15 to 1e15"),
    ("a", 10**400, "value must be a finite number from -1e15 to 1e15"),
    ("a", 10**15 + 1, "value must be a finite number from -1e15 to 1e15"),
    ("a", -1.0000001e15, "value must be a finite number from -1e15 to 1e15"),
    ("a", "12", "value must be a finite number from -1e15 to 1e15"),
    ("a", True, "value must be a finite number from -1e15 to 1e15"),
    ("a", None, "value must be a finite number from -1e15 to 1e15"),
    ("x" * 10_240, 1, "name must be 1 to 64 characters"),
    ("x" * 65, 1, "name must be 1 to 64 characters"),
    ("", 1, "name must be 1 to 64 characters"),
    (" padded", 1, "name must be 1 to 64 characters"),
    ("<script>", 1, "name must be 1 to 64 characters"),
    (42, 1, "name must be 1 to 64 characters"),
    ("CPU Usage", 50, "name must not be a built-in metric's"),
    ("memory usage", 50, "name must not be a built-in metric's"),
    ("Active Users", 5, "name must not be a built-in metric's"),
]


@pytest.mark.parametrize(("name", "value", "message"), HOSTILE, ids=lambda v: str(v)[:16])
def test_a_hostile_report_is_refused_and_stores_nothing(lambda_env, caplog, name, value, message):
    with caplog.at_level(logging.WARNING):
        result = report(name, value)
    assert result["statusCode"] == 400 and json.loads(result["body"])["error"].startswith(message)
    assert reported_item(lambda_env) is None
    assert "metric report refused" in caplog.text and "x" * 100 not in caplog.text


@pytest.mark.parametrize(
    "event",
    [
        load_event("metric_report", detail=[1, 2]),
        load_event("metric_report", detail={"name": "a"}),
        load_event("metric_report", detail={"name": "a", "value": 1, "unit": "ms"}),
        load_event("metric_report", **{"detail-type": "DashboardUpdate"}),
    ],
)
def test_a_report_of_another_shape_is_refused_and_stores_nothing(lambda_env, event):
    assert report_metric.handler(event, None)["statusCode"] == 400
    assert reported_item(lambda_env) is None


def test_ten_thousand_distinct_names_store_the_cap_and_refuse_the_rest(lambda_env):
    writes: list[str] = []
    events = lambda_env.table.client.meta.events
    events.register("before-call.dynamodb.UpdateItem", lambda **_: writes.append("UpdateItem"))
    statuses = [report(f"metric {n}", n)["statusCode"] for n in range(10_000)]
    cap = lambda_env.config.reported_metrics_max
    assert statuses == [200] * cap + [400] * (10_000 - cap)
    assert len(reported_item(lambda_env)["metrics"]["M"]) == cap
    # The map's creation, the cap's writes, and one refused write: the rest are refused without one.
    assert len(writes) == 1 + cap + 1


def test_the_publisher_reads_the_reported_metrics_only_when_somebody_listens(lambda_env, management_api):
    assert report("Queue depth", 1)["statusCode"] == 200
    assert json.loads(publish_metrics.handler(load_event("scheduled"), None)["body"])["pushes"] == 0
    assert lambda_env.snapshots.last_saved() is None
