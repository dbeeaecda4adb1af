"""The page at `/`, in a real browser: Debian's chromium, headless, driven by playwright-core from Node
(tests/js/page_check.js) against a running gateway. `make test` finds or installs the browser; a missing
browser fails here, never skips."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_gateway.page import PAGE
from shared.contract import CLIENT_EVENTS, METRIC_NAMES, SERVER_EVENTS, SYSTEM_METRIC_NAMES
from shared.validation import ID_RULE as RULE
from tests.support.servers import RunningGateway

SCRIPT = Path(__file__).parent / "js" / "page_check.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ID_RULE = f"dashboardId must be {RULE}"


@pytest.fixture(scope="module")
def page_gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="0.5").start()
    yield running
    running.stop()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_page_and_its_bundle_are_served_by_the_gateway(page_gateway):
    status, headers, body = get(f"{page_gateway.url}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert b'src="/page/socket.io.min.js"' in body and b"http" not in body.replace(b"http-equiv", b"")
    status, headers, body = get(f"{page_gateway.url}/page/socket.io.min.js")
    assert status == 200, "run `npm ci` in local_gateway/page (make run and make test do)"
    assert headers["content-type"].startswith("text/javascript") and b"4.8.1" in body
    assert get(f"{page_gateway.url}/page/package.json")[0] == 404
    assert get(f"{page_gateway.url}/page/..%2Fpage.py")[0] == 404


def test_page_uses_the_contracts_event_names_and_no_innerhtml():
    script = (PAGE / "page.js").read_text()
    names = set(re.findall(r"'(analytics:[A-Za-z]+)'", script))
    assert names == set(CLIENT_EVENTS + SERVER_EVENTS) - {"analytics:requestLiveMetrics"}
    assert not re.search(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(", script)
    percents = re.search(r"const PERCENTS = new Set\(\[([^\]]*)\]\)", script)  # shown with %, charted 0 to 100
    assert percents and re.findall(r"'([^']+)'", percents.group(1)) == list(SYSTEM_METRIC_NAMES)


async def run_page_check(url: str, picture: Path | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the browser test"
    assert os.access(CHROMIUM, os.X_OK), (
        f"Chromium is needed at {CHROMIUM} for the browser test: `make test` installs Debian's chromium "
        "(apt-get install chromium); or set CHROMIUM=/path/to/chromium"
    )
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        url,
        CHROMIUM,
        *([str(picture)] if picture else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, (stdout + stderr).decode()
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


# The README's picture (docs/page.png) is this test's capture: `PAGE_PICTURE=docs/page.png` writes it there.
PICTURE = os.environ.get("PAGE_PICTURE")


async def test_page_in_chromium_shows_live_metrics_dashboards_and_errors_and_stays_inert(page_gateway, tmp_path):
    picture = Path(PICTURE) if PICTURE else tmp_path / "page.png"
    result = await run_page_check(page_gateway.url, picture)
    assert picture.read_bytes().startswith(b"\x89PNG"), "the capture the README shows"
    host = page_gateway.url.removeprefix("http://")
    assert set(result["requests"]) == {host}, "everything comes from the gateway (no CDN)"
    assert result["pageErrors"] == [] and result["dialogs"] == []
    assert result["transport"] in ("polling", "websocket") and result["upgradedTransport"] == "websocket"
    # The metrics changed at a push: a new timestamp, the five names in order and the reported metric after them,
    # a chart of two or more points each.
    first, second = result["timestamps"]
    assert first != second and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", second)
    assert result["reportStatus"] == 202
    assert [m["name"] for m in result["metrics"]] == [*METRIC_NAMES, "Orders per minute"]
    assert result["metrics"][-1]["value"] == "42"
    assert all(m["points"] >= 2 and len(m["polyline"].split()) == m["points"] for m in result["metrics"])
    # A dashboard joined, an update published with the form, and it arrived, its data shown as text.
    assert result["publishResult"] == '202 {"delivered":1,"gone":0}'
    assert result["update"]["dashboard"] == "browser-test"
    assert json.loads(result["update"]["data"]) == {"revenue": 1200, "note": "<b>bold?</b>"}
    assert result["update"]["elements"] == 0
    # The drop button: the client reconnected, recovered its session, and got what was published meanwhile, once.
    assert result["awayPublish"] == 202
    assert result["recovery"] == {
        "session": "session recovered",
        "updatesAdded": 1,
        "latest": '{"away":true}',
        "state": "connected",
    }
    # The hostile id: refused by the server (analytics:error shown with its event), rendered inert.
    assert result["error"] == {"event": "analytics:joinDashboard", "message": ID_RULE}
    assert result["xssPublishResult"] == "400 " + json.dumps({"error": ID_RULE}, separators=(",", ":"))
    assert result["joined"] == ["browser-test"]
    assert result["images"] == 0 and result["injected"] == []
    assert result["unsubscribed"] is True
