"""One lane per connection: its events run one at a time, in the order they came, behind a bounded backlog.

A client that floods then waits behind itself, not in front of everyone else: it holds at most one of the
handler threads, and what it sends beyond the backlog is refused before any work (no DynamoDB call). When
the connection leaves, what it had queued is dropped instead of running for minutes after.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

Job = Callable[[], Awaitable[Any]]
DROPPED = object()  # the answer of a job dropped because its connection left


class Lane:
    def __init__(self, backlog: int) -> None:
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]]] = asyncio.Queue(backlog)
        self._worker = asyncio.create_task(self._run())
        self.refused_in_a_row = 0  # jobs refused since the last one taken

    def submit(self, job: Job) -> asyncio.Future[Any] | None:
        """The job's future answer, or None when the backlog is full (the job is not taken)."""
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((job, future))
        except asyncio.QueueFull:
            self.refused_in_a_row += 1
            return None
        self.refused_in_a_row = 0
        return future

    async def close(self) -> None:
        """Stop the running job and drop the queued ones: their futures answer DROPPED."""
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_result(DROPPED)

    async def _run(self) -> None:
        while True:
            job, future = await self._queue.get()
            try:
                result = await job()
            except asyncio.CancelledError:
                if not future.done():
                    future.set_result(DROPPED)
                raise
            except Exception as error:  # the caller's to handle, not the lane's
                if not future.done():
                    future.set_exception(error)
                continue
            if not future.done():
                future.set_result(result)
