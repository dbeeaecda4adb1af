"""Input rules of the wire contract."""

from __future__ import annotations

from typing import Any

from shared.codec import MISSING
from shared.contract import (
    DASHBOARD_ID,
    MAX_ID_LENGTH,
    MAX_METRIC_MAGNITUDE,
    MAX_METRIC_NAME_LENGTH,
    METRIC_NAME,
    METRIC_NAMES,
    SYSTEM_METRIC_NAMES,
)
from shared.errors import InvalidInput

ID_RULE = f"1 to {MAX_ID_LENGTH} characters from A-Z a-z 0-9 _ . : -"
METRIC_NAME_RULE = (
    f"1 to {MAX_METRIC_NAME_LENGTH} characters from A-Z a-z 0-9 space _ . : / ( ) % -, not starting or ending with"
    " a space"
)
_BUILT_IN = {name.casefold() for name in METRIC_NAMES}
_BOUND = f"{MAX_METRIC_MAGNITUDE:.0e}".replace("e+", "e")


def dashboard_id(value: Any) -> str:
    if value is MISSING or value is None:
        raise InvalidInput("dashboardId is required")
    if not isinstance(value, str):
        raise InvalidInput("dashboardId must be a string")
    if not DASHBOARD_ID.fullmatch(value):
        raise InvalidInput(f"dashboardId must be {ID_RULE}")
    return value


def user_id(value: Any) -> str:
    if not isinstance(value, str) or not DASHBOARD_ID.fullmatch(value):
        raise InvalidInput(f"userId must be {ID_RULE}")
    return value


def metric_report(detail: Any, system_names: bool) -> tuple[str, int | float]:
    """A MetricReport's {"name", "value"}. `system_names`: CPU Usage and Memory Usage may be reported (the
    `reported` source), as integer percents 0 to 100; no other built-in name ever. Nothing in a refusal's message
    comes from the report: a name may be 10 KB long."""
    if not isinstance(detail, dict) or set(detail) != {"name", "value"}:
        raise InvalidInput('A metric report is exactly {"name": ..., "value": ...}')
    name, value = detail["name"], detail["value"]
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise InvalidInput(f"name must be {METRIC_NAME_RULE}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= MAX_METRIC_MAGNITUDE:
        # `not <=` is also true of NaN; abs() of an int of any size compares without overflow.
        raise InvalidInput(f"value must be a finite number from -{_BOUND} to {_BOUND}")
    if system_names and name in SYSTEM_METRIC_NAMES:
        if not 0 <= value <= 100:
            raise InvalidInput(f"{name} must be a percent from 0 to 100")
        return name, round(value)
    if name.casefold() in _BUILT_IN:
        raise InvalidInput(
            "name must not be a built-in metric's (CPU Usage, Memory Usage: only with SYSTEM_METRICS_SOURCE=reported)"
        )
    return name, value
