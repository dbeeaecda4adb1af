"""The wire codec: client frames in, server frames out. The one place frames are encoded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.contract import MAX_FRAME_BYTES
from shared.errors import FrameTooLarge, InvalidInput

MISSING: Any = object()


@dataclass(frozen=True)
class ClientFrame:
    action: str
    data: Any = MISSING


def decode_client_frame(body: str | bytes | None) -> ClientFrame:
    """Parse `{"action": str, "data": any}`; raise a ClientError the client can read."""
    if body is None or body == "" or body == b"":
        raise InvalidInput('Empty frame: expected JSON {"action": ..., "data": ...}')
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_FRAME_BYTES:
        raise FrameTooLarge(f"Frame too large: {len(raw)} bytes, the limit is {MAX_FRAME_BYTES}")
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
        raise InvalidInput("Malformed frame: not valid JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
        raise InvalidInput('Malformed frame: expected an object with a string "action"')
    return ClientFrame(action=frame["action"], data=frame.get("data", MISSING))


def encode_client_frame(action: str, *args: Any) -> str:
    """The frame API Gateway receives for a client event; `data` is absent when there is no argument."""
    frame: dict[str, Any] = {"action": action}
    if args:
        frame["data"] = args[0]
    return json.dumps(frame, separators=(",", ":"))


@dataclass(frozen=True)
class ServerFrame:
    event: str
    data: Any
    offset: str | None = None  # a dashboard update's place in its history (connection state recovery)


def encode_server_frame(event: str, data: Any, offset: str | None = None) -> bytes:
    frame: dict[str, Any] = {"event": event, "data": data}
    if offset is not None:
        frame["offset"] = offset
    return json.dumps(frame, separators=(",", ":"), allow_nan=False).encode()


def decode_server_frame(body: bytes) -> ServerFrame:
    frame = json.loads(body)
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str) or "data" not in frame:
        raise ValueError('a server frame is {"event": str, "data": any}')
    offset = frame.get("offset")
    return ServerFrame(frame["event"], frame["data"], offset if isinstance(offset, str) else None)


def encode_ack(error: str | None = None, result: dict[str, Any] | None = None) -> str:
    """The handler's answer, which becomes the Socket.IO acknowledgement (or the route response); `result` adds
    an action's own fields to a success (the resume action's session)."""
    ack: dict[str, Any] = {"ok": True, **(result or {})} if error is None else {"ok": False, "error": error}
    return json.dumps(ack, separators=(",", ":"))
