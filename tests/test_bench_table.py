"""bench/table.py: the load page's table and goal lines, from hand-made results."""

from __future__ import annotations

from bench.load import Result
from bench.table import goals, load_table


def result(server: str, clients: int, rtt_p50_ms: float, connect_ms: float = 100.0) -> Result:
    return Result(
        server=server,
        clients=clients,
        connect_ms=connect_ms,
        rtt_p50_ms=rtt_p50_ms,
        rtt_p99_ms=2 * rtt_p50_ms,
        req_per_s=1000.0,
        push_last_ms=10.0,
        push_median_ms=5.0,
        kib_per_connection=50.0,
        cpu_ms_per_request=0.5,
        raw={},
    )


def results(with_floor: bool) -> dict[str, list[Result]]:
    measured = {
        "gateway": [result("gateway", 10, 3.0), result("gateway", 300, 26.1, connect_ms=300.0)],
        "baseline": [result("baseline", 10, 1.0), result("baseline", 300, 10.0)],
    }
    if with_floor:
        floor = [result("functions inline", 10, 2.4), result("functions inline", 300, 24.8, connect_ms=105.0)]
        measured["functions inline"] = floor
    return measured


def test_goals_name_the_floor_beside_each_ratio():
    assert goals(results(with_floor=True)) == [
        "Goals (gateway/baseline, same run):",
        "",
        "- RTT p50 at 10 clients: 3.00x (goal 1.5x): NOT met; the baseline running the functions inline: 2.40x"
        " (the goal is below that floor)",
        "- RTT p50 at 300 clients: 2.61x (goal 2x): NOT met; the baseline running the functions inline: 2.48x"
        " (the goal is below that floor)",
        "- connect all at 300 clients: 3.00x (goal 1.1x): NOT met; the baseline running the functions inline: 1.05x",
    ]


def test_goals_without_the_floor_keep_their_lines():
    assert goals(results(with_floor=False))[2:] == [
        "- RTT p50 at 10 clients: 3.00x (goal 1.5x): NOT met",
        "- RTT p50 at 300 clients: 2.61x (goal 2x): NOT met",
        "- connect all at 300 clients: 3.00x (goal 1.1x): NOT met",
    ]


def test_load_table_has_the_floors_columns():
    lines = load_table(results(with_floor=True), requests=10, pushes=3)
    header = next(line for line in lines if line.startswith("| clients"))
    assert header.endswith("| functions inline | functions inline/baseline |")
    row = next(line for line in lines if line.startswith("| 300 | RTT p50"))
    assert row == "| 300 | RTT p50 (ms) | 26.1 | 10.0 | 2.61x | 24.8 | 2.48x |"


def test_a_goal_met_is_not_said_to_be_below_the_floor():
    measured = {
        "gateway": [result("gateway", 10, 1.4)],
        "baseline": [result("baseline", 10, 1.0)],
        "functions inline": [result("functions inline", 10, 2.0)],
    }
    assert goals(measured)[2:] == [
        "- RTT p50 at 10 clients: 1.40x (goal 1.5x): met; the baseline running the functions inline: 2.00x"
    ]
