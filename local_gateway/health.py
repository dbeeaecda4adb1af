"""`GET /health`: whether DynamoDB answers, told the way a developer needs it, never the endpoint's address nor
the table's name."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from local_gateway.apigateway.registry import ConnectionRegistry
from local_gateway.awslambda.environment import LocalEnvironment
from local_gateway.dynamodb.embedded import quick_client

HEALTH_TIMEOUT_SECONDS = 1.0


class Health:
    def __init__(self, environment: LocalEnvironment, registry: ConnectionRegistry) -> None:
        self.environment = environment
        self.registry = registry
        self._client: Any = None  # its own DynamoDB client: short timeouts, no retries

    def forget_client(self) -> None:
        """At stop: the next start may name another DynamoDB."""
        self._client = None

    async def answer(self, request: Request) -> JSONResponse:
        """200 when DynamoDB answers a DescribeTable of the table within a second, else 503 and why."""
        problem = await run_in_threadpool(self._dynamodb_problem)
        body: dict[str, Any] = {
            "status": "ok" if problem is None else "unavailable",
            "connections": len(self.registry),
            "dynamodb": self.environment.dynamodb_kind(),
        }
        if problem is not None:
            body["reason"] = problem
        return JSONResponse(body, status_code=200 if problem is None else 503)

    def _dynamodb_problem(self) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        config = self.environment.config
        if config is None:
            return "starting"
        if self._client is None:
            self._client = quick_client(config.dynamodb_endpoint_url, HEALTH_TIMEOUT_SECONDS)
        try:
            self._client.describe_table(TableName=config.table_name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "an error")
            return "the table is missing" if code == "ResourceNotFoundException" else f"DynamoDB answered {code}"
        except BotoCoreError:
            return "DynamoDB does not answer"
        return None
