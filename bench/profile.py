"""`python -m bench.profile`: where the gateway's CPU goes under load, as `make run` starts it.

Starts the gateway with its defaults, samples it with py-spy while bench/load.js drives it, and prints the
share of the busy samples taken by each kind of thread (the event loop, the functions' pool, ...), in which
each package appears anywhere on the stack (our code, moto, botocore, werkzeug, ...: inclusive time), and the
innermost frames (self time). Only the thread holding the GIL is sampled (py-spy --gil): a thread waiting for
the GIL or a lock is not doing work, and with the GIL one thread at a time is.

    PROFILE_CLIENTS=10  PROFILE_REQUESTS=50   the load (more requests than the rate limiter's burst of 40
                                              and a client waits for answers it never gets)
    PROFILE_TOP=25                            how many frames to list
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.__main__ import RESULTS
from bench.load import run_load
from bench.servers import gateway

# py-spy cannot tell an idle thread here (every thread reads as running), so a sample whose innermost frame is
# one of these blocking waits is counted as waiting, not as work: a queue, a lock, a socket read, the loop's poll.
WAITS = {
    ("_worker", "concurrent/futures/thread.py"),  # an idle pool thread
    ("readinto", "socket.py"),  # a client waiting for its answer
    ("run", "asyncio/runners.py"),  # the event loop in its poll
    ("accept", "socket.py"),
    ("get", "queue.py"),
    ("wait", "threading.py"),
}
# Waiting for moto's one-at-a-time lock: the HTTP port's (call) and the in-process transports' (answer).
SERIALIZED = {("call", "local_gateway/dynamodb/embedded.py"), ("answer", "local_gateway/dynamodb/moto_transports.py")}

OURS = {"local_gateway", "shared", "handlers", "bench"}


def package_of(filename: str) -> str:
    """The package a frame's file belongs to: `moto`, `botocore`, ..., `ours` or `stdlib`.

    py-spy names a file relative to its sys.path entry: `moto/dynamodb/models/__init__.py`, `threading.py`.
    """
    top = filename.split("/", 1)[0].removesuffix(".py")
    if top in OURS:
        return "ours"
    if top == "werkzeug_app":  # moto's server app, named without its package
        return "moto"
    if top in sys.stdlib_module_names or top.startswith("<"):
        return "stdlib"
    return top


def _frame(text: str) -> tuple[str, str]:
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", text)
    return (match.group(1), match.group(2)) if match else (text, "")


def thread_kind(text: str) -> str:
    """`thread (1234): handler_7` -> `handler`: a pool's threads together."""
    name = text.partition("): ")[2] or text
    return re.sub(r"_\d+$", "", name)


def parse(raw: Path) -> tuple[Counter[str], Counter[str], Counter[str], Counter[str], int]:
    """py-spy's raw output with --threads (`thread (id): name;frame;frame;... count` per stack, innermost frame
    last, a frame reading `function (file:line)`): the busy samples' share by kind of thread, their inclusive
    share by package, their self share by frame, the inclusive share of each of our own functions, their
    number; the waiting samples are counted under the package `(waiting)` only."""
    by_thread: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    by_ours: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, _, stack = stack.partition(";")
        frames = [_frame(text) for text in stack.split(";")]
        if frames[-1] in WAITS or frames[-1] in SERIALIZED:
            by_package["(waiting)"] += count
            continue
        by_thread[thread_kind(thread)] += count
        for package in {package_of(filename) for _, filename in frames}:
            by_package[package] += count
        for name in {f"{function} ({filename})" for function, filename in frames if package_of(filename) == "ours"}:
            by_ours[name] += count
        function, filename = frames[-1]
        by_frame[f"{function} ({Path(filename).name})"] += count
        total += count
    return by_thread, by_package, by_frame, by_ours, total


def main() -> int:
    clients = int(os.environ.get("PROFILE_CLIENTS", "10"))
    requests = int(os.environ.get("PROFILE_REQUESTS", "50"))
    top = int(os.environ.get("PROFILE_TOP", "25"))
    server = gateway(60.0).start()
    assert server.process is not None
    raw = Path(tempfile.mkdtemp(prefix="profile-")) / "gateway.txt"
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(server.process.pid),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--rate",
            "250",
            "--gil",
            "--threads",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = run_load(server, clients, requests, 0)
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        spy.wait(timeout=30)
        server.stop()
    by_thread, by_package, by_frame, by_ours, total = parse(raw)
    lines = [
        f"# python -m bench.profile, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Gateway as `make run` starts it; {clients} clients x {requests} requestLiveMetrics:"
        f" RTT p50 {result.rtt_p50_ms:.1f} ms under py-spy, {total} busy samples"
        f" ({by_package['(waiting)']} more waiting, left out: see WAITS).",
        "",
        "| thread | share of samples |",
        "|---|---:|",
        *(f"| {name} | {100 * count / total:.1f}% |" for name, count in by_thread.most_common()),
        "",
        "| package on the stack | share of samples |",
        "|---|---:|",
        *(
            f"| {name} | {100 * count / total:.1f}% |"
            for name, count in by_package.most_common(14)
            if name not in ("stdlib", "(waiting)")  # every stack has the stdlib; waits are not work
        ),
        "",
        "| innermost frame | share |",
        "|---|---:|",
        *(f"| {name} | {100 * count / total:.1f}% |" for name, count in by_frame.most_common(top)),
        "",
        "| our function, on the stack | share |",
        "|---|---:|",
        *(f"| {name} | {100 * count / total:.1f}% |" for name, count in by_ours.most_common(top)),
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile-{datetime.now(UTC):%Y%m%d-%H%M%S}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
