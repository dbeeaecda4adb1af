"""The functions' CPU per event, in this process: the handlers as the gateway's pool runs them, on the embedded
DynamoDB with its fast path, with a poster that keeps nothing (no gateway, no client, no network).

    python -m bench.function_cpu            FUNCTION_CPU_EVENTS=2000  FUNCTION_CPU_ONLY=join (one row)

requestLiveMetrics (its rate limiter's token, its snapshot read without a remembered tick, the frame encoded),
then joinDashboard and leaveDashboard, each on connections of their own so that no bucket runs dry, then a JSON
client's $connect and $disconnect on fresh connection ids. Prints the
median of 5 runs of CPU milliseconds per event; `python -m cProfile -s tottime -m bench.function_cpu` says where.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from statistics import median
from typing import Any

from bench.function_host import embedded_services, event
from shared.services import reset_services

EVENTS = int(os.environ.get("FUNCTION_CPU_EVENTS", "2000"))
ONLY = os.environ.get("FUNCTION_CPU_ONLY", "")  # the rows whose label holds this text
ROUNDS = int(os.environ.get("FUNCTION_CPU_ROUNDS", "5"))
CONNECTIONS = 200


class DiscardingPoster:
    def post(self, connection_id: str, frame: bytes) -> None:
        pass

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        return []

    def disconnect(self, connection_id: str) -> None:
        pass

    def is_connected(self, connection_id: str) -> bool:
        return True

    def flush(self) -> None:
        pass


def median_ms(work: Callable[[int], Any], per_round: int) -> tuple[float, float]:
    """The median and the least of ROUNDS runs' CPU per call (the least is the one the machine disturbed least)."""
    samples = []
    for round_ in range(ROUNDS):
        started = time.process_time()
        for index in range(per_round):
            work(round_ * per_round + index)
        samples.append((time.process_time() - started) / per_round * 1000)
    return median(samples), min(samples)


def main() -> None:
    from handlers import connect, disconnect, join_dashboard, leave_dashboard, request_live_metrics

    reset_services(embedded_services(DiscardingPoster()))
    ids = [f"bench{index:06d}=" for index in range(CONNECTIONS * 3)]
    for cid in ids:
        assert connect.handler(event("connect", cid), None)["statusCode"] == 200
    per_round = EVENTS // ROUNDS
    request, rooms = ids[:CONNECTIONS], ids[CONNECTIONS:]
    rows = [
        (
            "requestLiveMetrics",
            lambda n: request_live_metrics.handler(
                event("message", request[n % CONNECTIONS], "analytics:requestLiveMetrics"), None
            ),
        ),
        (
            "joinDashboard, then leaveDashboard",
            lambda n: (
                join_dashboard.handler(event("message", rooms[n % len(rooms)], "analytics:joinDashboard", "d"), None),
                leave_dashboard.handler(event("message", rooms[n % len(rooms)], "analytics:leaveDashboard", "d"), None),
            ),
        ),
        (
            "$connect, then $disconnect (a JSON client)",
            lambda n: (
                connect.handler(event("connect", f"fresh{n:09d}="), None),
                disconnect.handler(event("disconnect", f"fresh{n:09d}="), None),
            ),
        ),
    ]
    for _ in range(50):  # warm: botocore's caches, the compiled expressions
        rows[0][1](0)
    for label, work in rows:
        if ONLY not in label:
            continue
        middle, least = median_ms(work, per_round)
        print(f"{label}: {middle:.3f} ms CPU per event (median of {ROUNDS} x {per_round}; least {least:.3f})")


if __name__ == "__main__":
    main()
