"""analytics:subscribeLiveMetrics."""

from __future__ import annotations

from typing import Any

from shared.actions import subscribe_live_metrics
from shared.runtime import handle_message


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_message(event, context, subscribe_live_metrics)
