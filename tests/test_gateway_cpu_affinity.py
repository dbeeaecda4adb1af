"""GATEWAY_CPU: every thread of `python -m local_gateway` on one CPU by default, as many as the kernel likes with
`any`, or the one named."""

from __future__ import annotations

import os
import subprocess

import pytest

from local_gateway.cpu_affinity import read_choice
from shared.env_values import ConfigError
from tests.test_gateway_process import run_gateway_process, subscribe_and_join

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="one CPU to run on: nothing to choose")


async def subscribes_and_joins(url: str) -> None:
    assert await subscribe_and_join(url) == [{"ok": True}] * 2  # the functions' threads have run


def thread_cpus(**environment: str) -> tuple[dict[int, set[int]], str]:
    """The CPUs each thread of a running gateway may use, read once its functions' threads have run a client's
    events; and the gateway's output."""
    cpus: dict[int, set[int]] = {}

    def read(process: subprocess.Popen[bytes]) -> None:
        for thread_id in os.listdir(f"/proc/{process.pid}/task"):
            try:
                cpus[int(thread_id)] = set(os.sched_getaffinity(int(thread_id)))
            except ProcessLookupError:
                continue  # it ended meanwhile

    output = run_gateway_process(subscribes_and_joins, while_running=read, **environment)
    return cpus, output


@needs_two_cpus
def test_every_thread_of_the_gateway_runs_on_one_cpu_by_default():
    cpus, output = thread_cpus()
    assert len(cpus) > 3  # the event loop, the functions' threads, the embedded DynamoDB's
    (only,) = {frozenset(allowed) for allowed in cpus.values()}
    assert len(only) == 1 and only <= set(ALLOWED)
    assert f"the gateway's threads run on CPU {next(iter(only))} (GATEWAY_CPU=any" in output


@needs_two_cpus
def test_gateway_cpu_names_the_cpu_every_thread_runs_on():
    cpus, _ = thread_cpus(GATEWAY_CPU=str(ALLOWED[-1]))
    assert all(allowed == {ALLOWED[-1]} for allowed in cpus.values())


@needs_two_cpus
def test_gateway_cpu_any_leaves_the_threads_where_the_kernel_puts_them():
    cpus, output = thread_cpus(GATEWAY_CPU="any")
    assert all(allowed == set(ALLOWED) for allowed in cpus.values())
    assert "threads run on CPU" not in output


def test_gateway_cpu_reads_one_any_and_a_cpu_this_process_may_use():
    assert read_choice(None) == "one"
    assert read_choice(" ANY ") == "any"
    if ALLOWED:
        assert read_choice(str(ALLOWED[0])) == ALLOWED[0]


@pytest.mark.parametrize("raw", ["seven", "-1", "1.5", str(max(ALLOWED, default=0) + 1)])
def test_gateway_cpu_refuses_anything_else_naming_itself(raw):
    with pytest.raises(ConfigError, match=r"^GATEWAY_CPU must be one, any"):
        read_choice(raw)
