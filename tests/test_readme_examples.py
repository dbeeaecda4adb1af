"""The README's examples run as pasted: every fenced block right after `<!-- example: run -->` is extracted and run
against a running gateway, with what the README's own install line installs: `pip install ...` into a fresh
virtualenv (with the pip `python -m venv` ships), `npm install ...` into a fresh folder. The one change: the
address, `localhost:4000`, becomes the test gateway's."""

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

from tests.support.servers import RunningGateway

ROOT = Path(__file__).resolve().parent.parent
MARKED = re.compile(r"<!-- example: run -->\n```(\w+)\n(.*?)\n```", re.DOTALL)


INSTALL = re.compile(r"`((?:pip|npm) install [^`]+)`")


def examples() -> list[tuple[str, str]]:
    return MARKED.findall((ROOT / "README.md").read_text())


def install_lines() -> dict[str, str]:
    """The README's install line of each language: the last `pip install` / `npm install` before its examples."""
    found: dict[str, str] = {}
    for line in INSTALL.findall((ROOT / "README.md").read_text()):
        found.setdefault("python" if line.startswith("pip") else "js", line)
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each language's packages, installed as the README says: a virtualenv's python, a folder's node_modules."""
    import subprocess

    lines = install_lines()
    assert set(lines) == {"python", "js"}, lines
    venv = tmp_path_factory.mktemp("readme-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = lines["python"].split()  # pip install python-socketio aiohttp
    subprocess.run([str(venv / "bin" / "pip"), *pip[1:], "--quiet"], check=True, timeout=300)
    npm_folder = tmp_path_factory.mktemp("readme-npm")
    npm = shutil.which("npm")
    assert npm, "npm is needed for the README's JavaScript examples"
    command = lines["js"].split()  # npm install socket.io-client
    subprocess.run([npm, *command[1:], "--no-audit", "--no-fund", "--loglevel=error"], cwd=npm_folder, check=True,
                   timeout=300)  # fmt: skip
    return {"python": venv / "bin" / "python", "js": npm_folder / "node_modules"}


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
async def test_readme_example_runs_as_pasted(example_gateway, installed, language, code):
    code = code.replace("localhost:4000", f"127.0.0.1:{example_gateway.port}")
    with tempfile.TemporaryDirectory() as directory:
        if language == "python":
            script = Path(directory) / "example.py"
            command = [str(installed["python"]), str(script)]
        else:
            assert language == "js"
            node = shutil.which("node")
            assert node, "Node.js is needed for the README's JavaScript examples"
            os.symlink(installed["js"], Path(directory) / "node_modules")
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


# A row of a settings table: the variables in its first cell, the default in its last.
SETTING_ROW = re.compile(r"^\| ((?:`[A-Z_]+`(?:, )?)+) \|.*\| ([^|]+) \|$", re.MULTILINE)
NUMBER = re.compile(r"\d+(\.\d+)?")


def documented_number_defaults() -> dict[str, str]:
    """Each setting whose README default is a plain number (`20, 40` for a row of two): {name: number}."""
    found: dict[str, str] = {}
    for names, cell in SETTING_ROW.findall((ROOT / "README.md").read_text()):
        stated = [value.strip() for value in cell.split(";")[0].split("(")[0].split(",")]
        for name, value in zip(re.findall(r"`([A-Z_]+)`", names), stated, strict=False):
            if NUMBER.fullmatch(value):
                found[name] = value
    return found


def test_the_readmes_number_defaults_are_the_codes():
    """Setting a variable to the default the README states changes nothing, and to another value changes what
    the gateway or the functions read: the README's default is the code's, and the variable is read."""
    from local_gateway.settings import GatewaySettings
    from shared.config import Config

    def read(environ: dict[str, str]) -> tuple[object, object]:
        return GatewaySettings.from_env(environ), Config.from_env(environ)

    base = {"TABLE_NAME": "readme"}
    defaults = documented_number_defaults()
    assert {"METRICS_INTERVAL_SECONDS", "RATE_LIMIT_BURST", "SOCKETIO_CONNECT_TIMEOUT_SECONDS", "PORT"} <= set(defaults)
    for name, value in defaults.items():
        assert read({**base, name: value}) == read(base), f"{name}: the README's default {value} is not the code's"
        other = str(float(value) + 1)
        assert read({**base, name: other}) != read(base), f"{name} is read by neither the gateway nor the functions"
