"""Socket.IO at `$default` driven as API Gateway drives it: frames sent to the function, the packets posted back
read as python-socketio reads them."""

from __future__ import annotations

from typing import Any

import engineio.packet as eio
import socketio.packet as sio

from handlers import connect, default
from shared.services import Services
from tests.handler_calls import state
from tests.support.events import connect_event, load_event

A, B = "AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB="
SOCKETIO_QUERY = {"EIO": "4", "transport": "websocket"}
IMPLIED_ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod"


class RecordingInvoker:
    """Stands in for the Lambda client that invokes the open-packet function."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def invoke_async(self, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)


_MANAGEMENT_API: list[Any] = []  # the running test's Management API, where CONNECT answers are posted


def socketio_services(lambda_env: Services, monkeypatch: Any, management_api: Any) -> Services:
    """lambda_env for Socket.IO at `$default`: the open-packet function's invocations recorded instead of made
    (`recorded_invoker`), and `management_api` the one the CONNECT answers are read from."""
    _MANAGEMENT_API[:] = [management_api]
    invoker = RecordingInvoker()
    monkeypatch.setattr(lambda_env, "open_invoker", lambda: invoker)
    lambda_env.recorded_invoker = invoker  # type: ignore[attr-defined]
    return lambda_env


def keys(svc) -> set[tuple[str, str]]:
    return set(state(svc))


def frame_event(connection_id: str, body: str) -> dict[str, Any]:
    event = load_event("message", connection_id, body=body)
    event["requestContext"]["routeKey"] = "$default"
    return event


def send(connection_id: str, body: str) -> str:
    result = default.handler(frame_event(connection_id, body), None)
    assert result["statusCode"] == 200
    answer: str = result["body"]
    return answer


def socketio_connect(connection_id: str, **query: str) -> None:
    result = connect.handler(connect_event(connection_id, {**SOCKETIO_QUERY, **query}), None)
    assert result == {"statusCode": 200, "body": "Connected"}


def connect_answer(route_response: str, sid: str) -> str:
    """The namespace CONNECT's answer, held to its shape: the sid, and the session's private id (returned). It is
    posted (before anything a recovery replays), and the route response is Engine.IO's noop."""
    assert route_response == "6"
    answers = [frame for frame in _MANAGEMENT_API[0].raw_frames(sid) if frame.startswith("40")]
    packet = socketio_packet(answers[-1])
    assert packet.packet_type == sio.CONNECT and packet.data["sid"] == sid
    assert set(packet.data) == {"sid", "pid"} and len(packet.data["pid"]) >= 32
    pid: str = packet.data["pid"]
    return pid


def opened(connection_id: str, **query: str) -> str:
    """$connect as a Socket.IO client, then its namespace CONNECT; the session's private id (`pid`)."""
    socketio_connect(connection_id, **query)
    return connect_answer(send(connection_id, "40"), connection_id)


def socketio_packet(frame: str) -> sio.Packet:
    """A server frame decoded as python-socketio's client decodes it."""
    engine = eio.Packet(encoded_packet=frame)
    assert engine.packet_type == eio.MESSAGE
    return sio.Packet(encoded_packet=engine.data)


def posted(management_api, connection_id: str) -> list[str]:
    """What was posted to the connection but its CONNECT answers."""
    return [frame for frame in management_api.raw_frames(connection_id) if not frame.startswith("40")]


def pushed(management_api, connection_id: str) -> list[list[Any]]:
    """The Socket.IO events posted to the connection, as [name, data]."""
    packets = [socketio_packet(frame) for frame in posted(management_api, connection_id)]
    assert all(packet.packet_type == sio.EVENT for packet in packets)
    return [packet.data for packet in packets]
