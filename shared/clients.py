"""The AWS clients the functions build: botocore's settings, DynamoDB, CloudWatch, Lambda, and the poster for
API Gateway's Management API. Each is built when first asked for (never at import, never before moto starts)."""

from __future__ import annotations

import os
from typing import Any, cast

from shared.async_invoke import Invoker, LambdaInvoker
from shared.config import Config
from shared.poster import Poster
from shared.signed_poster import SignedPoster

RETRIES: dict[str, Any] = {"max_attempts": 5, "mode": "standard"}  # backoff for throttling and 5xx, by botocore


def client_config(pool: int = 50) -> Any:
    """The functions' botocore settings: their retries, pool and timeouts."""
    from botocore.config import Config as BotoConfig

    return BotoConfig(retries=dict(RETRIES), max_pool_connections=pool, connect_timeout=3, read_timeout=10)


def dynamodb_client(config: Config) -> Any:
    import boto3

    return boto3.session.Session().client("dynamodb", endpoint_url=config.dynamodb_endpoint_url, config=client_config())


def cloudwatch_client(config: Config) -> Any:
    """The publisher's tick waits for GetMetricData: one retry and short timeouts, not the table's patience (a
    failure only leaves CPU and memory out for a minute)."""
    import boto3
    from botocore.config import Config as BotoConfig

    settings = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return boto3.session.Session().client("cloudwatch", endpoint_url=config.cloudwatch_endpoint_url, config=settings)


def management_api_poster(endpoint_url: str) -> Poster:
    """The fan-out engine (shared/signed_poster.py): pooled keep-alive HTTP signed with SigV4, retried as
    botocore's standard mode with the same attempts as the boto3 clients (see bench/posting.py for why not boto3)."""
    import boto3

    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign @connections calls with")
    region = session.region_name or os.environ.get("AWS_REGION") or "us-east-1"
    retries = cast(int, RETRIES["max_attempts"])  # botocore counts retries; SignedPoster counts attempts
    return SignedPoster(endpoint_url, credentials, region, attempts=1 + retries)


def lambda_invoker(config: Config, function_name: str) -> Invoker:
    import boto3

    client = boto3.session.Session().client("lambda", endpoint_url=config.lambda_endpoint_url, config=client_config())
    return LambdaInvoker(client, function_name)
