"""Stale connections heal: the reconciler asks API Gateway (`GET @connections/{id}`) about every registered
connection past its grace period and removes, as `$disconnect` does, each one that answers 410 Gone; bounded
per run, resumed where it stopped."""

from __future__ import annotations

import json
import time
from collections import Counter

import boto3
import pytest

from shared.counters import Counts
from shared.poster import CheckFailed, ManagementApiPoster
from shared.reconcile_pass import RECONCILE_KEY
from shared.reconciler import RunResult
from shared.stale_connections import CHECK_AFTER_SECONDS
from tests.handler_calls import connected, join, owned_by, subscribe
from tests.support.dynamodb import registered

LIVE, ALICE = "LIVEAAAAAAAAAAA=", "ALICEAAAAAAAAAA="
GHOST, ANON_GHOST = "GHOSTAAAAAAAAAA=", "ANONGHOSTAAAAAA="


def later(svc, monkeypatch, seconds: float) -> None:
    """The table's clock (every function's, and the reconciler's) `seconds` ahead of now."""
    monkeypatch.setattr(svc.table, "clock", lambda: time.time() + seconds)


def whole_pass(svc) -> list[RunResult]:
    runs = [svc.reconciler.run(svc.config.reconcile_batch)]
    while not runs[-1].finished:
        runs.append(svc.reconciler.run(svc.config.reconcile_batch))
    return runs


def test_a_connection_without_a_socket_is_removed_after_the_grace_and_the_counts_are_exact(
    lambda_env, management_api, monkeypatch
):
    connected(ALICE, "alice")
    connected(GHOST, "ghost")
    connected(ANON_GHOST)
    subscribe(GHOST)
    for cid, dashboard in [(ALICE, "sales"), (GHOST, "sales"), (GHOST, "ops"), (ANON_GHOST, "ops")]:
        assert join(cid, dashboard) == {"ok": True}
    management_api.gone |= {GHOST, ANON_GHOST}  # their sockets went away; no $disconnect came
    before = Counts(connections=3, active_users=3, subscribers=1, active_dashboards=2)
    assert lambda_env.counters.read() == before

    # Younger than the grace (a JSON connection is answered 410 while its $connect runs): nobody is asked.
    young = whole_pass(lambda_env)
    assert sum(run.checked for run in young) == 0 and management_api.asked() == []
    assert lambda_env.counters.read() == before

    later(lambda_env, monkeypatch, CHECK_AFTER_SECONDS + 1)
    (run,) = whole_pass(lambda_env)
    assert (run.checked, run.removed, run.unanswered) == (3, 2, 0)
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, subscribers=0, active_dashboards=1)
    assert owned_by(lambda_env, GHOST) == set() and owned_by(lambda_env, ANON_GHOST) == set()
    assert registered(lambda_env, ALICE)
    # What a recount finds is what the removals left: nothing to heal, and the totals stand as they are.
    (again,) = whole_pass(lambda_env)
    assert (again.healed, again.removed, again.totals_written) == (0, 0, True)
    assert lambda_env.counters.read() == Counts(connections=1, active_users=1, subscribers=0, active_dashboards=1)


def test_a_live_connection_is_asked_about_once_a_pass_and_never_removed(lambda_env, management_api, monkeypatch):
    ids = [f"LIVE{n:011d}=" for n in range(6)]
    for n, cid in enumerate(ids):
        connected(cid, f"user{n % 2}" if n % 3 else None)
        assert join(cid, f"d{n % 2}") == {"ok": True}
    subscribe(ids[0])
    counts = lambda_env.counters.read()
    later(lambda_env, monkeypatch, 3600)
    for _ in range(3):
        (run,) = whole_pass(lambda_env)
        assert (run.checked, run.removed) == (6, 0)
    assert Counter(management_api.asked()) == {cid: 3 for cid in ids}
    assert all(registered(lambda_env, cid) for cid in ids)
    assert lambda_env.counters.read() == counts


@pytest.mark.parametrize("status", [403, 500])
def test_a_check_answered_with_anything_but_410_removes_nothing(lambda_env, management_api, monkeypatch, status):
    """403 (say, a grant missing from the role) or a 500 that outlasts the retries: unknown, so kept."""
    connected(GHOST, "ghost")
    assert join(GHOST, "sales") == {"ok": True}
    counts = lambda_env.counters.read()
    management_api.failing[GHOST] = status
    later(lambda_env, monkeypatch, CHECK_AFTER_SECONDS + 1)
    (run,) = whole_pass(lambda_env)
    assert (run.checked, run.removed, run.unanswered) == (1, 0, 1)
    assert registered(lambda_env, GHOST) and lambda_env.counters.read() == counts
    # Asked again next pass; once API Gateway answers 410 it goes.
    del management_api.failing[GHOST]
    management_api.gone.add(GHOST)
    (run,) = whole_pass(lambda_env)
    assert (run.checked, run.removed, run.unanswered) == (1, 1, 0)
    assert lambda_env.counters.read() == Counts()


def test_checks_are_bounded_per_run_and_resume_where_they_stopped(lambda_env, management_api, monkeypatch):
    """6 anonymous stale connections and a live one, a user with 5 stale ones, alice live; 4 connections listed
    a run at most: the runs stop inside ANON's partition and inside users' partitions (the index kept just before
    the user), and each resumes there."""
    anonymous = [f"ANON{n:011d}=" for n in range(6)]
    crowd = [f"CROWD{n:010d}=" for n in range(5)]
    for cid in anonymous:
        connected(cid)
        assert join(cid, "sales") == {"ok": True}
    for cid in crowd:
        connected(cid, "crowd")
        assert join(cid, "ops") == {"ok": True}
    connected(LIVE)
    connected(ALICE, "alice")
    assert join(ALICE, "ops") == {"ok": True}
    management_api.gone |= {*anonymous, *crowd}
    monkeypatch.setattr(lambda_env.reconciler, "check_budget", 4)
    later(lambda_env, monkeypatch, CHECK_AFTER_SECONDS + 1)

    runs = [lambda_env.reconciler.run(100)]
    place = json.loads(lambda_env.table.get(RECONCILE_KEY, consistent=True)["state"]["S"])
    assert place["phase"] == "ANON" and place["check"]["pk"] == "ANON"  # stopped inside ANON's connections
    while not runs[-1].finished:
        runs.append(lambda_env.reconciler.run(100))
    # ANON 4 | ANON 3, alice 1 | crowd 4 | crowd 1, then the rooms: a new run wherever 4 were listed.
    assert [run.checked for run in runs] == [4, 4, 4, 1]
    assert sum(run.removed for run in runs) == 11
    assert Counter(management_api.asked()) == {cid: 1 for cid in [*anonymous, *crowd, LIVE, ALICE]}
    assert lambda_env.counters.read() == Counts(connections=2, active_users=2, subscribers=0, active_dashboards=1)
    assert registered(lambda_env, LIVE) and registered(lambda_env, ALICE)


def test_the_boto3_poster_asks_as_the_engine_does(management_api):
    client = boto3.client("apigatewaymanagementapi", endpoint_url=management_api.url, region_name="us-east-1")
    poster = ManagementApiPoster(client)
    management_api.gone.add(GHOST)
    management_api.failing[ANON_GHOST] = 403
    assert [poster.is_connected(LIVE), poster.is_connected(GHOST)] == [True, False]
    with pytest.raises(CheckFailed) as failure:
        poster.is_connected(ANON_GHOST)
    assert failure.value.status == 403
    assert management_api.asked() == [LIVE, GHOST, ANON_GHOST]
