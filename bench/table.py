"""The bench's tables, as Markdown."""

from __future__ import annotations

from bench.load import Result

# (label, attribute, lower is better)
METRICS = [
    ("connect all (ms)", "connect_ms", True),
    ("RTT p50 (ms)", "rtt_p50_ms", True),
    ("RTT p99 (ms)", "rtt_p99_ms", True),
    ("requests/s", "req_per_s", False),
    ("push last delivery (ms)", "push_last_ms", True),
    ("push median delivery (ms)", "push_median_ms", True),
    ("memory/connection (KiB)", "kib_per_connection", True),
    ("server CPU/request, connects included (ms)", "cpu_ms_per_request", True),
]


def summary(result: Result) -> str:
    return ", ".join(f"{label} {getattr(result, attr):.1f}" for label, attr, _ in METRICS)


def _ratio(ours: float, theirs: float) -> str:
    if not theirs:
        return "n/a"
    return f"{ours / theirs:.2f}x"


def load_table(results: dict[str, list[Result]], requests: int, pushes: int, rounds: int = 1) -> list[str]:
    with_peer = bool(results.get("node peer"))
    header = "| clients | metric | gateway | baseline | gateway/baseline |"
    rule = "|---:|---|---:|---:|---:|"
    if with_peer:
        header += " node peer | gateway/peer |"
        rule += "---:|---:|"
    lines = [
        f"## Load: {requests} requestLiveMetrics per client, {pushes} pushes, push period 1 s",
        "",
        f"Each figure is the median of {rounds} rounds, the servers taking turns; ratios are gateway / other (for"
        " requests/s lower means slower).",
        "",
        header,
        rule,
    ]
    for index, ours in enumerate(results["gateway"]):
        base = results["baseline"][index]
        peer = results["node peer"][index] if with_peer else None
        for label, attr, _ in METRICS:
            a, b = getattr(ours, attr), getattr(base, attr)
            row = f"| {ours.clients} | {label} | {a:.1f} | {b:.1f} | {_ratio(a, b)} |"
            if peer is not None:
                c = getattr(peer, attr)
                row += f" {c:.1f} | {_ratio(a, c)} |"
            lines.append(row)
    lines += ["", *goals(results), ""]
    return lines


def goals(results: dict[str, list[Result]]) -> list[str]:
    """Issue 24's goals for the default configuration (tighter than issue 11's): RTT p50 within 1.5x at 10
    clients and 2x at 300 and 1,000, connecting 300 clients within 1.1x, the last delivery of a push to 1,000
    subscribers within 1.0x."""
    by_clients = {r.clients: (r, results["baseline"][i]) for i, r in enumerate(results["gateway"])}
    lines = ["Goals (gateway/baseline, same run):", ""]
    for clients, attr, label, goal in (
        (10, "rtt_p50_ms", "RTT p50", 1.5),
        (300, "rtt_p50_ms", "RTT p50", 2.0),
        (1000, "rtt_p50_ms", "RTT p50", 2.0),
        (300, "connect_ms", "connect all", 1.1),
        (1000, "push_last_ms", "push last delivery", 1.0),
    ):
        if clients not in by_clients:
            continue
        ours, base = by_clients[clients]
        ratio = getattr(ours, attr) / getattr(base, attr) if getattr(base, attr) else float("inf")
        verdict = "met" if ratio <= goal else "NOT met"
        lines.append(f"- {label} at {clients} clients: {ratio:.2f}x (goal {goal:g}x): {verdict}")
    return lines
