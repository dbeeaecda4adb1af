"""The scheduled reconciler: one bounded share of a recount pass per run (shared/reconciler.py)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from shared.services import services

logger = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services(context)
    result = svc.reconciler.run(svc.config.reconcile_batch)
    logger.info("reconciled: %s", asdict(result))
    return {"statusCode": 200, "body": json.dumps(asdict(result))}
