"""The servers a bench run drives, each a child process on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peer"  # the handbook's Node peer: optional, never required


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, port: int | None = None) -> Server:
        """Start on a free port, or on `port` (a restart where clients reconnect)."""
        self.port = port or free_port()
        env = {**os.environ, **self.environment, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                opened = urllib.request.urlopen(f"{self.url}/socket.io/?EIO=4&transport=polling", timeout=1).read()
            except OSError:
                time.sleep(0.1)
                continue
            # The probe closes its Engine.IO session (close packet "1"), so that none is left over in the load.
            sid = json.loads(opened.decode()[1:])["sid"]
            close = urllib.request.Request(f"{self.url}/socket.io/?EIO=4&transport=polling&sid={sid}", data=b"1")
            urllib.request.urlopen(close, timeout=5).read()
            return self
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def gateway(interval: float, **environment: str) -> Server:
    env = {"METRICS_INTERVAL_SECONDS": str(interval), **environment}
    return Server("gateway", [sys.executable, "-m", "local_gateway"], env)


def baseline(interval: float) -> Server:
    return Server("baseline", [sys.executable, "-m", "bench.baseline"], {"METRICS_INTERVAL_SECONDS": str(interval)})


def functions_inline(interval: float) -> Server:
    """The baseline running the real functions inline on its event loop (bench/functions_inline.py)."""
    environment = {"METRICS_INTERVAL_SECONDS": str(interval)}
    return Server("functions inline", [sys.executable, "-m", "bench.functions_inline"], environment)


def node_peer(interval: float, scratch: Path) -> Server | None:
    """The handbook's Node peer, copied out (it is read-only where it lives) and installed; None if absent."""
    if not (PEER / "server.js").exists() or shutil.which("npm") is None:
        return None
    target = Path(tempfile.mkdtemp(dir=scratch)) / "peer"
    shutil.copytree(PEER, target, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, check=True, capture_output=True
    )
    return Server("node peer", ["node", "server.js"], {"METRICS_INTERVAL_MS": str(int(interval * 1000))}, target)
