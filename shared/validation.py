"""Input rules of the wire contract."""

from __future__ import annotations

from typing import Any

from shared.codec import MISSING
from shared.contract import DASHBOARD_ID, MAX_ID_LENGTH
from shared.errors import InvalidInput

ID_RULE = f"1 to {MAX_ID_LENGTH} characters from A-Z a-z 0-9 _ . : -"


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
