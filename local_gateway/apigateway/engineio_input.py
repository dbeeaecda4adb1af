"""Engine.IO input screened before python-engineio decodes it: over WebSocket and in polling POSTs.

python-engineio decodes a packet before anything can look at it, and some it cannot handle end in a traceback
at ERROR: a packet type it does not know (`7`, `8`, `9`: its own log line indexes a list of seven names), a
letter for a type, a `b` packet that is not base64, an empty message, a POST of more than 16 packets or not in
UTF-8. Here each one is dropped with one WARNING line, the rest passed on, whatever is wrong with it; what is
inside a message packet is screening.py's business.

Polling POSTs are also bounded here: one that declares more than `limit` bytes (413) or no length at all (411:
a chunked body would be read whole) is answered before any of its body is read; any other is read in full
before Engine.IO sees it, so a client that leaves halfway (or is hung up on at the request deadline) leaves
nothing to answer, where Engine.IO would parse the half it got.
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_gateway.logs import printable

logger = logging.getLogger("local_gateway")

FROM_CLIENTS = "123456"  # close, ping, pong, message, upgrade, noop: open (0) is the server's alone
MAX_PACKETS = 16  # python-engineio's own bound on a polling payload (Payload.max_decode_packets)
SEPARATOR = "\x1e"


def refusal(packet: str) -> str | None:
    """Why Engine.IO could not take this text packet, or None when it can."""
    if not packet:
        return "an empty packet"
    kind = packet[0]
    if kind == "b":
        try:
            base64.b64decode(packet[1:])  # as python-engineio decodes it
        except (binascii.Error, ValueError):
            return "a binary packet that is not base64"
        return None
    if kind not in FROM_CLIENTS:
        return f"packet type {printable(kind)!r} is not one a client sends"
    return None


def screened_engineio(app: ASGIApp, limit: int, path: str = "/socket.io") -> ASGIApp:
    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].rstrip("/") == path:
            if scope["type"] == "websocket":
                await app(scope, _screened_messages(receive), send)
                return
            if scope["method"] == "POST":
                await _polling_post(app, scope, receive, send, limit)
                return
        await app(scope, receive, send)

    return call


def _screened_messages(receive: Receive) -> Receive:
    async def screened() -> Message:
        while True:
            message = await receive()
            text = message.get("text") if message["type"] == "websocket.receive" else None
            why = None if text is None else refusal(text)
            if why is None:
                return message
            logger.warning("Engine.IO packet refused: %s", why)

    return screened


async def _polling_post(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is None or not declared.isdigit() or int(declared) > limit:
        status, message = (411, "Length required") if declared is None else (413, "The body is too large")
        response = PlainTextResponse(message, status_code=status, headers={"connection": "close"})
        await response(scope, receive, send)
        return
    body = await _whole_body(receive)
    if body is None:
        return  # the client has gone: nobody to answer
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        logger.warning("Engine.IO packet refused: a polling POST that is not UTF-8")
        await PlainTextResponse("Bad Request", status_code=400)(scope, receive, send)
        return
    await app(scope, _replayed(_kept_packets(payload).encode(), receive), send)


def _kept_packets(payload: str) -> str:
    """The payload without the packets Engine.IO cannot take (each told in one line); JSONP's `d=` form read."""
    if payload.startswith("d="):
        payload = parse_qs(payload).get("d", [""])[0]
    packets = payload.split(SEPARATOR) if payload else []
    if len(packets) > MAX_PACKETS:
        logger.warning("Engine.IO packets refused: %d in one polling POST, at most %d", len(packets), MAX_PACKETS)
        return ""
    kept = []
    for packet in packets:
        why = refusal(packet)
        if why is None:
            kept.append(packet)
        else:
            logger.warning("Engine.IO packet refused: %s", why)
    return SEPARATOR.join(kept)


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body, or None when the client left before it was all sent."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")  # at most the length declared, which is within the limit
        if not message.get("more_body", False):
            return bytes(body)


def _replayed(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # the disconnect, whenever it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
