"""The official JavaScript socket.io-client, run by Node, against the real gateway."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from shared.contract import METRIC_NAMES
from tests.support.contract import contract_validator

SCRIPT = Path(__file__).parent / "js" / "seed_example.js"


async def run_seed_example(url: str, transport: str) -> dict:
    node = shutil.which("node")
    assert node, "Node.js is needed for the JavaScript client tests"
    process = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), url, transport, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (stdout + stderr).decode()
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    validate = contract_validator()  # every event and every ack the client received, held to asyncapi.yaml
    assert result["frames"], "the client recorded no server event"
    for event, payload in result["frames"]:
        validate(event, payload)
    for ack in result["acks"].values():
        validate("ack", ack)
    return result


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_js_client_runs_the_seed_example(gateway, transport):
    result = await run_seed_example(gateway.url, transport)
    assert result["transport"] == transport
    assert result["acks"]["subscribe"] == {"ok": True}
    assert result["acks"]["request"] == {"ok": True}
    assert result["acks"]["join"] == {"ok": True}
    assert result["acks"]["unsubscribe"] == {"ok": True}
    assert result["acks"]["badJoin"] == {"ok": False, "error": "dashboardId must be a string"}
    assert result["errors"] == [{"message": "dashboardId must be a string", "event": "analytics:joinDashboard"}]
    assert result["pushesWhileSubscribed"] >= 2
    assert result["pushesAfterUnsubscribe"] == 0
    assert [m["name"] for m in result["lastSnapshot"]] == list(METRIC_NAMES)
