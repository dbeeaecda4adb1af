"""The live metrics' definitions (docs/metrics.md): where CPU Usage and Memory Usage come from, and the bounds of
reported metrics."""

from __future__ import annotations

import pytest

from shared.config import Config, ConfigError


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
