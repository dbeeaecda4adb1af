"""Runs a function as Lambda would: off the event loop, with its context and timeout; its posts delivered first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local_gateway.apigateway.events import LambdaContext
from local_gateway.apigateway.registry import ConnectionRegistry
from local_gateway.awslambda.outbox import Delivery, deliver, run_collecting
from shared.services import Services

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
HANDLER_THREADS = 32
SYSTEM_THREADS = 8  # the publisher, dashboard updates and Lambda invocations: never behind client events
INTEGRATION_TIMEOUT_SECONDS = 29.0  # API Gateway's most for an integration


class FunctionFailed(Exception):
    """The function raised, timed out or returned what API Gateway cannot read."""


class FunctionInvoker:
    def __init__(
        self,
        registry: ConnectionRegistry,
        timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        threads: int = HANDLER_THREADS,
        name: str = "handler",
    ) -> None:
        self.registry = registry
        self.services: Services | None = None  # handed to its functions on their context
        self.timeout_seconds = timeout_seconds
        self.threads, self.name = threads, name
        self.executor = self._new_executor()

    async def invoke(
        self,
        handler: Handler,
        event: dict[str, Any],
        name: str,
        log_failure: bool = True,
        timeout_seconds: float | None = None,
    ) -> Any:
        """The function's answer; FunctionFailed when it raised (its `__cause__`) or ran past its timeout (this
        invoker's, unless `timeout_seconds` gives the function's own), logged unless the caller logs it its own
        way: `log_failure=False`."""
        timeout = timeout_seconds or self.timeout_seconds
        context = LambdaContext(function_name=name, timeout_seconds=timeout, services=self.services)
        loop = asyncio.get_running_loop()
        settled = loop.create_future()  # the function has returned or raised, or its time is up
        timer: asyncio.TimerHandle | None = None

        def settle(*_: Any) -> None:
            if not settled.done():
                settled.set_result(None)

        def start_the_clock() -> None:
            nonlocal timer
            if not running.done():
                timer = loop.call_later(timeout, settle)

        deliveries: list[Delivery] = []

        def run() -> Any:
            # The timeout counts from here, as Lambda's does: waiting for a free thread is not running.
            loop.call_soon_threadsafe(start_the_clock)
            return run_collecting(deliveries, handler, event, context)

        running = loop.run_in_executor(self.executor, run)
        running.add_done_callback(settle)
        try:
            await settled  # one future and one timer: asyncio.wait and wait_for cost twice the CPU here
        except asyncio.CancelledError:
            running.cancel()  # not started yet: it never will be
            raise
        finally:
            if timer is not None:
                timer.cancel()
        timed_out = not running.done()
        error = None if timed_out else running.exception()
        if timed_out:
            running.cancel()  # whatever it ends with now is nobody's: not logged as never retrieved
            if log_failure:
                logger.error("function %s timed out after %ss", name, timeout)
        elif isinstance(error, Exception) and log_failure:
            logger.error("function %s raised", name, exc_info=error)
        # Its posts reach their clients before its answer, and when it raised or timed out too, as AWS delivers
        # each post when it is made; once it has timed out it runs on here, but what it posts from now on is not
        # sent (a copy is delivered).
        await deliver(self.registry, list(deliveries))
        if timed_out:
            raise FunctionFailed(name)
        if isinstance(error, Exception):
            raise FunctionFailed(name) from error
        return running.result()

    async def invoke_route(self, handler: Handler, event: dict[str, Any], name: str) -> dict[str, Any]:
        """A route's integration: the function's `{"statusCode", "body"}`; FunctionFailed for anything else."""
        result = await self.invoke(handler, event, name)
        if not isinstance(result, dict) or not isinstance(result.get("statusCode", 200), int):
            logger.error("function %s returned %r, not {statusCode, body}", name, type(result).__name__)
            raise FunctionFailed(name)
        return result

    def restart(self) -> None:
        """Its threads would outlive a stopped gateway; a gateway started again gets a fresh pool. What was
        still queued is cancelled: shutdown does not wait for it."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new_executor()

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=self.name)
