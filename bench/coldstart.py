"""Cold start: what importing each handler costs next to `import boto3` alone (python -X importtime)."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = sorted(p.stem for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_us(statement: str, runs: int = 5) -> float:
    """Median over fresh interpreters of the summed top-level cumulative import times, in microseconds."""
    totals = []
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT, capture_output=True, text=True, check=True
        ).stderr
        totals.append(sum(int(m.group(2)) for m in map(LINE.match, err.splitlines()) if m and len(m.group(3)) == 1))
    return statistics.median(totals)


def baseline_us() -> float:
    return import_us("pass")  # the interpreter's own start-up imports (encodings, site, ...)


def section() -> list[str]:
    base = baseline_us()
    boto3 = import_us("import boto3") - base
    lines = [
        "## Cold start: python -X importtime, median of 5 fresh interpreters (interpreter start-up subtracted)",
        "",
        f"`import boto3` alone: {boto3 / 1000:.0f} ms",
        "",
        "| handler | import alone (ms) | / boto3 | import + boto3 (ms) | / boto3 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in HANDLERS:
        alone = import_us(f"import handlers.{name}") - base
        both = import_us(f"import handlers.{name}, boto3") - base
        lines.append(
            f"| {name} | {alone / 1000:.0f} | {alone / boto3:.2f}x | {both / 1000:.0f} | {both / boto3:.2f}x |"
        )
        print(
            f"  {name}: {alone / 1000:.0f} ms alone, {both / 1000:.0f} ms with boto3 (boto3 {boto3 / 1000:.0f} ms)",
            flush=True,
        )
    return [*lines, ""]
