"""The live metrics as deployed (docs/metrics.md), through the simulated stack (tests/support/simulated_stack.py):
CPU and memory from CloudWatch or from the services' reports, reported metrics in order and expiring, hostile
reports refused; only the publisher calls CloudWatch, and every call is within the function's grants."""

from __future__ import annotations

import time

import pytest

from shared.contract import METRIC_NAMES
from shared.services import reset_services
from tests.support.cloudwatch import cloudwatch_metrics
from tests.support.events import disconnect_event
from tests.support.management_api import ManagementApiEndpoint
from tests.support.simulated_stack import (
    PUBLISHER,
    A,
    B,
    C,
    D,
    SimulatedStack,
    assert_least_privilege,
    frame,
    metric_report,
    metrics,
    simulated_stack,
)


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
