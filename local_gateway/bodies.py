"""Request bodies read with a bound: a client cannot make the gateway hold more than it would ever accept."""

from __future__ import annotations

from starlette.requests import Request

from shared.contract import MAX_MESSAGE_BYTES

# The largest body any HTTP endpoint accepts: a 128 KB frame posted to @connections, a fan-out slice handed to a
# worker, a dashboard update, each with room for its envelope.
MAX_BODY_BYTES = 2 * MAX_MESSAGE_BYTES


class BodyTooLarge(Exception):
    """The body declared or sent more than the endpoint accepts; nothing beyond the bound was read."""


async def bounded_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked bodies too: counted as they arrive, never buffered past the bound
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
