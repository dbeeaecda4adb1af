"""The README's examples run as pasted: every fenced block right after `<!-- example: run -->` is extracted and run
(Python with this interpreter, JavaScript as an ES module with Node and tests/js's socket.io-client) against a
running gateway. The one change: the address, `localhost:4000`, becomes the test gateway's."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import RunningGateway

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = Path(__file__).parent / "js" / "node_modules"
MARKED = re.compile(r"<!-- example: run -->\n```(\w+)\n(.*?)\n```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    return MARKED.findall((ROOT / "README.md").read_text())


@pytest.fixture(scope="module")
def example_gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(METRICS_INTERVAL_SECONDS="1").start()
    yield running
    running.stop()


def test_readme_marks_its_examples():
    languages = [language for language, _ in examples()]
    assert languages.count("js") >= 2 and languages.count("python") >= 1
    # Every marker is followed by a fence (a marker with a blank line after it would silently run nothing).
    markers = re.findall(r"^<!-- example: run -->$", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert len(markers) == len(languages)


@pytest.mark.parametrize(("language", "code"), examples(), ids=lambda value: value[:24].replace("\n", " "))
async def test_readme_example_runs_as_pasted(example_gateway, language, code):
    code = code.replace("localhost:4000", f"127.0.0.1:{example_gateway.port}")
    with tempfile.TemporaryDirectory() as directory:
        if language == "python":
            script = Path(directory) / "example.py"
            command = [sys.executable, str(script)]
        else:
            assert language == "js"
            node = shutil.which("node")
            assert node, "Node.js is needed for the README's JavaScript examples"
            os.symlink(NODE_MODULES, Path(directory) / "node_modules")  # as `npm install socket.io-client` would
            script = Path(directory) / "example.mjs"
            command = [node, str(script)]
        script.write_text(code + "\n")
        process = await asyncio.create_subprocess_exec(
            *command, cwd=directory, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    output, errors = stdout.decode(), stderr.decode()
    assert process.returncode == 0, output + errors
    assert "Traceback" not in errors and "Event loop is closed" not in errors, errors
    if language == "python":
        assert "{'ok': True}" in output and "{'ok': False, 'error': 'dashboardId must be" in output
        assert "'name': 'Active Users'" in output  # the pushes printed
    else:
        assert "{ ok: true }" in output and "Active Users" in output  # the ack, and console.table of a push
