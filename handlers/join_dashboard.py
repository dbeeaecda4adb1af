"""analytics:joinDashboard."""

from __future__ import annotations

from typing import Any

from shared.actions import join_dashboard
from shared.runtime import handle_message


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_message(event, context, join_dashboard)
