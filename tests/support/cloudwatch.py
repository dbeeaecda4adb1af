"""CloudWatch datapoints in moto, for the metrics the gateway reports."""

from __future__ import annotations

import uuid


def cloudwatch_metrics(endpoint_url: str, cpu: float, memory: float, age_seconds: float = 90) -> dict[str, str]:
    """CPU and memory datapoints of a service of its own (its dimension values are new) in the CloudWatch at
    `endpoint_url` (moto's), `age_seconds` old; the settings that point SYSTEM_METRICS_SOURCE=cloudwatch at them."""
    from datetime import UTC, datetime, timedelta

    import boto3

    service = f"web-{uuid.uuid4().hex[:8]}"
    dimensions = [{"Name": "ClusterName", "Value": "prod"}, {"Name": "ServiceName", "Value": service}]
    at = datetime.now(UTC) - timedelta(seconds=age_seconds)
    client = boto3.session.Session().client("cloudwatch", endpoint_url=endpoint_url, region_name="us-east-1")
    client.put_metric_data(
        Namespace="AWS/ECS",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Percent", "Timestamp": at}
            for name, value in (("CPUUtilization", cpu), ("MemoryUtilization", memory))
        ],
    )
    return {
        "SYSTEM_METRICS_SOURCE": "cloudwatch",
        "SYSTEM_METRICS_NAMESPACE": "AWS/ECS",
        "SYSTEM_METRICS_DIMENSIONS": f"ClusterName=prod,ServiceName={service}",
        "CLOUDWATCH_ENDPOINT_URL": endpoint_url,
    }
