"""What publishing one dashboard update costs the publish function: CPU and DynamoDB calls per update.

Run in the tree to measure (`python -m bench.publish_cost` with that tree as the working directory and
PYTHONPATH), so that bench/recovery.py can hold this tree against the code before connection state recovery
in the same sitting. The functions reach moto in-process, as under `make run`; posts go to a poster that only
counts (the posting itself is bench/posting.py's subject). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

MEMBERS = int(os.environ.get("PUBLISH_COST_MEMBERS", "50"))
UPDATES = int(os.environ.get("PUBLISH_COST_UPDATES", "300"))


class CountingPoster:
    def __init__(self) -> None:
        self.posts = 0

    def post(self, connection_id: str, frame: bytes) -> None:
        self.posts += 1

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        self.posts += len(list(connection_ids))
        return []

    def disconnect(self, connection_id: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def is_connected(self, connection_id: str) -> bool:
        return True


def main() -> int:
    from handlers import connect, join_dashboard, publish_dashboard_update

    try:
        from local_gateway.dynamodb.embedded import EmbeddedDynamoDB, ensure_local_credentials, ensure_table
    except ImportError:  # a tree from before local_gateway/dynamodb/ (bench/recovery.py runs this in older trees)
        from local_gateway.dynamodb import (  # type: ignore[no-redef,attr-defined]
            EmbeddedDynamoDB,
            ensure_local_credentials,
            ensure_table,
        )
    from local_gateway.template import Template

    try:
        from shared.clients import client_config
    except ImportError:  # a tree from before shared/clients.py
        from shared.services import client_config  # type: ignore[attr-defined,no-redef]
    from shared.config import Config
    from shared.services import Services, reset_services

    ensure_local_credentials()
    embedded = EmbeddedDynamoDB()
    embedded.start()
    config = Config.from_env({"TABLE_NAME": "publish-cost", "CONNECTIONS_ENDPOINT_URL": "http://127.0.0.1:9"})
    client = embedded.client(client_config())
    ensure_table(client, config.table_name, Template.load())
    poster = CountingPoster()
    svc = Services.from_config(config, poster_factory=lambda endpoint: poster, dynamodb=client)
    reset_services(svc)
    for n in range(MEMBERS):
        cid = f"c{n:014d}="
        event = {
            "requestContext": {
                "connectionId": cid,
                "routeKey": "$connect",
                "eventType": "CONNECT",
                "domainName": "localhost",
                "stage": "prod",
            },
            "queryStringParameters": None,
        }
        connect.handler(event, None)
        message = {
            "requestContext": {
                **event["requestContext"],
                "routeKey": "analytics:joinDashboard",
                "eventType": "MESSAGE",
            },
            "body": json.dumps({"action": "analytics:joinDashboard", "data": "cost"}),
        }
        join_dashboard.handler(message, None)
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    posts_before = poster.posts
    started = time.process_time()
    for n in range(UPDATES):
        update = {
            "source": "analytics",
            "detail-type": "DashboardUpdate",
            "detail": {"dashboardId": "cost", "data": {"n": n}},
        }
        assert publish_dashboard_update.handler(update, None)["statusCode"] == 200
    cpu = time.process_time() - started
    print(
        json.dumps(
            {
                "members": MEMBERS,
                "updates": UPDATES,
                "cpu_ms_per_update": 1000 * cpu / UPDATES,
                "calls_per_update": {op: n / UPDATES for op, n in sorted(calls.items())},
                "posts_per_update": (poster.posts - posts_before) / UPDATES,
            }
        )
    )
    embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
