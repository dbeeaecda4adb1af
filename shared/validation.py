"""Input rules of the wire contract."""

from __future__ import annotations

from typing import Any

from shared.codec import MISSING
from shared.contract import DASHBOARD_ID
from shared.errors import InvalidInput


def dashboard_id(value: Any) -> str:
    if value is MISSING or value is None:
        raise InvalidInput("dashboardId is required")
    if not isinstance(value, str):
        raise InvalidInput("dashboardId must be a string")
    if not DASHBOARD_ID.fullmatch(value):
        raise InvalidInput("dashboardId must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
    return value


def user_id(value: Any) -> str:
    if not isinstance(value, str) or not DASHBOARD_ID.fullmatch(value):
        raise InvalidInput("userId must be 1 to 128 characters from A-Z a-z 0-9 _ . : -")
    return value
