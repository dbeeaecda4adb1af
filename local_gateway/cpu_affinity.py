"""Every thread of the gateway on one CPU (Linux), unless GATEWAY_CPU says otherwise.

The gateway is one Python process: the event loop's thread and the functions' threads take turns holding the
GIL, handing it over several times for every client event (the function handed to its thread, its answer handed
back, each socket read and write in between). When the threads run on two CPUs, every hand-over wakes the other
CPU, and the caches follow the GIL from one to the other (the convoy David Beazley measured in 2010, and
bpo-7946). With the GIL only one of them runs at a time anyway, so one CPU loses little parallelism: measured with
300 clients, the round trip fell by 38% and the server's CPU per request by a third (docs/performance.md).

`one` (the default): the CPU the gateway is running on as it starts, where the kernel placed it; `any`: the
kernel places each thread; a number: that CPU.
"""

from __future__ import annotations

import logging
import os

from shared.env_values import ConfigError

logger = logging.getLogger("local_gateway")

GATEWAY_CPU = "GATEWAY_CPU"
ONE, ANY = "one", "any"


def read_choice(raw: str | None) -> str | int:
    """GATEWAY_CPU as given: `one`, `any`, or a CPU this process may run on; else one clear line."""
    value = (raw or ONE).strip().lower()
    if value in (ONE, ANY):
        return value
    allowed = _allowed_cpus()
    if value.isdigit() and allowed is not None and int(value) in allowed:
        return int(value)
    choices = f"one, any, or a CPU this process may use ({_listed(allowed)})" if allowed else "one or any"
    raise ConfigError(f"{GATEWAY_CPU} must be {choices}, got {raw!r}")


def apply(choice: str | int) -> int | None:
    """Put every thread of this process, and so every thread they start, on the chosen CPU; the CPU, or None
    when the threads stay where the kernel puts them (`any`, one CPU only, or no affinity on this system)."""
    allowed = _allowed_cpus()
    if choice == ANY or allowed is None or len(allowed) < 2:
        return None
    cpu = choice if isinstance(choice, int) else _current_cpu(allowed)
    # A new thread starts with its creator's affinity: the threads running now, and so all that come later.
    for thread_id in _thread_ids():
        try:
            os.sched_setaffinity(thread_id, {cpu})
        except ProcessLookupError:
            continue  # it ended meanwhile
    logger.info("the gateway's threads run on CPU %d (%s=any lets the kernel place them)", cpu, GATEWAY_CPU)
    return cpu


def _allowed_cpus() -> set[int] | None:
    if not hasattr(os, "sched_getaffinity"):
        return None  # macOS, Windows: the kernel places the threads
    return set(os.sched_getaffinity(0))


def _current_cpu(allowed: set[int]) -> int:
    import psutil

    cpu = int(psutil.Process().cpu_num())
    return cpu if cpu in allowed else min(allowed)


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # this thread: the gateway sets its affinity before it starts any


def _listed(cpus: set[int] | None) -> str:
    return ", ".join(str(cpu) for cpu in sorted(cpus or ()))
