"""The contender the fan-out engine is measured against: aiohttp's pooled keep-alive client driving the same
SigV4Signer, on one asyncio loop in one thread, as SignedPoster does. Bench only: not shipped."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterable
from hashlib import sha256
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.sigv4 import SigV4Signer


class AiohttpPoster:
    def __init__(self, endpoint_url: str, credentials: Any, region: str, connections: int = 32) -> None:
        self.signer = SigV4Signer(endpoint_url, "execute-api", region)
        self.origin = f"{self.signer.scheme}://{self.signer.host}"
        self.credentials = credentials
        self.connections = connections
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aiohttp-loop", daemon=True)
        self.thread.start()
        self.session = self._run(self._session())

    @classmethod
    def from_env(cls, endpoint_url: str) -> AiohttpPoster:
        import boto3

        session = boto3.session.Session()
        return cls(endpoint_url, session.get_credentials(), session.region_name or "us-east-1")

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        return self._run(self._fan_out(list(connection_ids), frame, self.credentials.get_frozen_credentials()))

    def close(self) -> None:
        self._run(self.session.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def _session(self) -> Any:
        import aiohttp

        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.connections))

    async def _fan_out(self, ids: list[str], frame: bytes, credentials: Any) -> list[str]:
        from yarl import URL

        payload_hash = sha256(frame).hexdigest()
        pending = iter(ids)
        gone: list[str] = []

        async def worker() -> None:
            for connection_id in pending:
                path = self.signer.path(connection_id)
                amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                lines = self.signer.headers(path, payload_hash, credentials, amz_date)
                headers = dict(line.split(": ", 1) for line in lines.split("\r\n") if line)
                url = URL(self.origin + path, encoded=True)  # already quoted as signed: no second quoting
                async with self.session.post(url, data=frame, headers=headers) as response:
                    await response.read()
                    if response.status == 410:
                        gone.append(connection_id)

        await asyncio.gather(*(worker() for _ in range(min(self.connections, len(ids)))))
        return gone


def installed_closure(distribution: str) -> dict[str, float]:
    """KiB on disk of a distribution and everything it requires on this interpreter, as pip installed them."""
    sizes: dict[str, float] = {}
    todo = [distribution]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in sizes:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        files = [Path(str(dist.locate_file(f))) for f in dist.files or []]
        sizes[name] = sum(f.stat().st_size for f in files if f.is_file()) / 1024
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return sizes


if __name__ == "__main__":
    print(installed_closure(os.environ.get("DIST", "aiohttp")))
