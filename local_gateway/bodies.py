"""Request bodies read with a bound: a client cannot make the gateway hold more than it would ever accept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from shared.contract import MAX_MESSAGE_BYTES

# The largest body any HTTP endpoint accepts: a 128 KB frame posted to @connections, a fan-out slice handed to a
# worker, a dashboard update, each with room for its envelope.
MAX_BODY_BYTES = 2 * MAX_MESSAGE_BYTES
# A client still sending when the connection closes gets a reset instead of the 413 (its unread bytes make the
# kernel answer RST): what is left of a body not far beyond the bound is read and thrown away first, for at most
# a second, as web servers' lingering close does. Anything larger is cut off at once.
DRAIN_BYTES = 4 * MAX_BODY_BYTES
DRAIN_SECONDS = 1.0


class BodyTooLarge(Exception):
    """The body declared or sent more than the endpoint accepts; nothing beyond the bound was kept."""


class BodyIncomplete(Exception):
    """The client left before its whole body came: it hung up, or was too slow and was hung up on (the request
    deadline, local_gateway/http_protocol.py). Nobody is left to answer."""


async def bounded_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        # A client that waits for "100 Continue" has sent nothing yet: reading would only ask it for the body.
        waiting = request.headers.get("expect", "").lower() == "100-continue"
        if declared.isdigit() and int(declared) <= limit + DRAIN_BYTES and not waiting:
            await _drain(request.stream())
        raise BodyTooLarge
    chunks, size = [], 0
    stream = request.stream()
    try:
        async for chunk in stream:  # chunked bodies too: counted as they arrive, never buffered past the bound
            size += len(chunk)
            if size > limit:
                await _drain(stream)
                raise BodyTooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyIncomplete from None
    return b"".join(chunks)


async def _drain(stream: AsyncIterator[bytes]) -> None:
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in stream:
                drained += len(chunk)
                if drained > DRAIN_BYTES:
                    return
    except (TimeoutError, ClientDisconnect):
        return
