"""The publisher's clock after a slow tick, ensure_table's pages, and Services' one-thread builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults import DynamoDBFaults


@pytest.fixture
def faults(lambda_env) -> Iterator[DynamoDBFaults]:
    injector = DynamoDBFaults(lambda_env.table.client)
    yield injector
    injector.close()


# -- 5. missed ticks are skipped, not replayed --------------------------------------------------
def test_a_slow_tick_skips_the_ticks_it_overran_instead_of_bursting(lambda_env, monkeypatch):
    from shared import publisher

    config = dataclasses.replace(lambda_env.config, metrics_interval_seconds=5, publish_window_seconds=60)
    monkeypatch.setattr(lambda_env, "config", config)
    now = [0.0]
    started: list[float] = []

    def tick(svc, poster):
        started.append(now[0])
        now[0] += 27.0 if len(started) == 1 else 0.01  # the first tick overruns five intervals and a bit
        return None

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(publisher, "tick", tick)
    result = publisher.run_window(lambda_env, lambda_env.poster(), clock=lambda: now[0], sleep=sleep)
    assert started == [0.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0]  # back on the 5 s grid, nothing replayed
    assert result.ticks == len(started)


# -- 6. every page of ListTables; one build of each collaborator across threads -----------------
@pytest.mark.dynamodb_wire
def test_ensure_table_reads_every_page_of_list_tables(lambda_env, faults):
    from local_gateway.dynamodb.embedded import ensure_table
    from local_gateway.template import template

    name = lambda_env.config.table_name
    pages = {None: {"TableNames": ["another"], "LastEvaluatedTableName": "another"}, "another": {"TableNames": [name]}}
    faults.answer("ListTables", lambda body: pages[body.get("ExclusiveStartTableName")], times=2)
    assert ensure_table(lambda_env.table.client, name, template()) is False  # found on the second page
    assert faults.calls["ListTables"] == 2 and faults.calls.get("CreateTable", 0) == 0


def test_each_collaborator_is_built_by_one_thread_while_the_others_wait(lambda_env, monkeypatch):
    import threading
    import time

    from shared import services as services_module
    from shared.services import Services

    built: list[int] = []
    real = services_module.LatestSnapshot

    def slow_build(*args, **kwargs):
        built.append(threading.get_ident())
        time.sleep(0.05)  # long enough for every other thread to arrive meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(services_module, "LatestSnapshot", slow_build)
    svc = Services.from_config(lambda_env.config)
    barrier = threading.Barrier(8)

    def get():
        barrier.wait()
        return svc.snapshots

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda _: get(), range(8)))
    assert len(built) == 1
    assert all(snapshot is got[0] for snapshot in got)
