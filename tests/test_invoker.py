"""The invoker runs a function as Lambda runs it: its timeout counted from when it starts, a function that
outlives it failed, one whose caller gave up before it started never run."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from local_gateway.apigateway.registry import ConnectionRegistry
from local_gateway.awslambda.invoker import FunctionFailed, FunctionInvoker


def _sleeps(seconds: float, ran: threading.Event | None = None):
    def handler(event, context):
        if ran is not None:
            ran.set()
        time.sleep(seconds)
        return {"statusCode": 200, "seconds": seconds}

    return handler


async def test_waiting_for_a_free_thread_is_not_counted_against_the_timeout():
    invoker = FunctionInvoker(ConnectionRegistry(), timeout_seconds=0.6, threads=1)
    first = asyncio.create_task(invoker.invoke(_sleeps(0.4), {}, "first"))
    second = asyncio.create_task(invoker.invoke(_sleeps(0.4), {}, "second"))  # waits 0.4 s, then runs 0.4 s
    assert (await first)["seconds"] == 0.4
    assert (await second)["seconds"] == 0.4


async def test_a_function_that_waited_for_a_thread_times_out_its_timeout_after_it_started():
    invoker = FunctionInvoker(ConnectionRegistry(), timeout_seconds=0.3, threads=1)
    first = asyncio.create_task(invoker.invoke(_sleeps(0.2), {}, "first"))
    await asyncio.sleep(0)  # the first takes the thread
    submitted = time.monotonic()
    with pytest.raises(FunctionFailed):
        await invoker.invoke(_sleeps(1.0), {}, "second", log_failure=False)  # starts at 0.2 s: its time is up at 0.5
    assert 0.45 < time.monotonic() - submitted < 0.75
    assert (await first)["seconds"] == 0.2


async def test_a_function_that_outlives_its_timeout_fails_and_its_end_is_dropped(caplog):
    def outlives(event, context):
        time.sleep(0.5)
        raise RuntimeError("after the timeout: nobody's to hear")

    invoker = FunctionInvoker(ConnectionRegistry(), timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(FunctionFailed):
        await invoker.invoke(outlives, {}, "slow")
    assert time.monotonic() - started < 0.45
    assert "timed out after 0.2s" in caplog.text
    await asyncio.sleep(0.5)  # the function ends, raising: no "exception was never retrieved"
    import gc

    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_an_invocation_cancelled_before_it_starts_never_runs():
    invoker = FunctionInvoker(ConnectionRegistry(), threads=1)
    ran = threading.Event()
    busy = asyncio.create_task(invoker.invoke(_sleeps(0.3), {}, "busy"))
    waiting = asyncio.create_task(invoker.invoke(_sleeps(0, ran), {}, "waiting"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await busy
    await asyncio.sleep(0.1)
    assert not ran.is_set()
