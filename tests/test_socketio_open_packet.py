"""The function that posts a Socket.IO connection's open packet after `$connect`: posted once past API Gateway's
410s, given up (and the pending item removed) when the connection never appears, a malformed event refused."""

from __future__ import annotations

import json

import engineio.packet as eio
import pytest

from handlers import socketio_open as open_handler
from shared.errors import ConnectionGone
from shared.socketio_open import RETRY_DELAYS_SECONDS, post_open_packet
from tests.support.socketio_default import IMPLIED_ENDPOINT, A, keys, socketio_connect


class FlakyPoster:
    """Answers ConnectionGone `gone` times, then records the frame."""

    def __init__(self, gone: int) -> None:
        self.gone = gone
        self.attempts = 0
        self.posted: list[tuple[str, bytes]] = []

    def post(self, connection_id: str, frame: bytes) -> None:
        self.attempts += 1
        if self.attempts <= self.gone:
            raise ConnectionGone(connection_id)
        self.posted.append((connection_id, frame))


@pytest.fixture
def flaky(socketio_svc, monkeypatch):
    def with_poster(gone: int) -> FlakyPoster:
        poster = FlakyPoster(gone)
        monkeypatch.setattr(socketio_svc, "poster", lambda endpoint=None: poster)
        return poster

    return with_poster


@pytest.mark.parametrize("gone", range(len(RETRY_DELAYS_SECONDS) + 1))
def test_the_open_packet_is_posted_once_after_the_410s(socketio_svc, flaky, gone):
    poster, delays = flaky(gone), []
    socketio_connect(A)
    assert post_open_packet(socketio_svc, {"connectionId": A, "endpoint": IMPLIED_ENDPOINT}, sleep=delays.append)
    (posted,) = poster.posted
    assert posted[0] == A
    packet = eio.Packet(encoded_packet=posted[1].decode())
    assert packet.packet_type == eio.OPEN
    assert packet.data == {
        "sid": A,
        "upgrades": [],
        "pingInterval": int(socketio_svc.config.ping_interval_seconds * 1000),
        "pingTimeout": int(socketio_svc.config.ping_timeout_seconds * 1000),
        "maxPayload": 32 * 1024,
    }
    assert poster.attempts == gone + 1 and len(delays) == gone + 1
    assert delays == sorted(delays) and sum(delays) <= 5
    assert keys(socketio_svc) == {(f"CONN#{A}", f"CONN#{A}")}  # the pending item stays for the CONNECT


def test_a_connection_that_stays_gone_is_given_up_and_its_pending_item_removed(socketio_svc, flaky):
    poster, delays = flaky(10**6), []
    socketio_connect(A)
    assert post_open_packet(socketio_svc, {"connectionId": A, "endpoint": None}, sleep=delays.append) is False
    assert poster.posted == [] and poster.attempts == len(RETRY_DELAYS_SECONDS) + 1
    assert 1 <= sum(delays) <= 5
    assert keys(socketio_svc) == set()


def test_the_open_function_answers_410_when_the_connection_never_appears(socketio_svc, management_api, monkeypatch):
    import shared.socketio_open

    monkeypatch.setattr(shared.socketio_open, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    socketio_connect(A)
    management_api.gone.add(A)
    result = open_handler.handler({"open": {"connectionId": A, "endpoint": IMPLIED_ENDPOINT}}, None)
    assert result == {"statusCode": 410, "body": json.dumps({"opened": False})}
    assert keys(socketio_svc) == set()


@pytest.mark.parametrize(
    "event",
    [
        {},
        None,
        [],
        "open",
        {"open": None},
        {"open": "x"},
        {"open": []},
        {"open": {}},
        {"open": {"connectionId": 5}},
        {"open": {"connectionId": None, "endpoint": IMPLIED_ENDPOINT}},
        {"open": {"connectionId": A, "endpoint": 5}},
        {"open": {"connectionId": A, "endpoint": ["x"]}},
    ],
)
def test_the_open_function_refuses_a_malformed_event(socketio_svc, management_api, event):
    result = open_handler.handler(event, None)
    assert result["statusCode"] == 400
    assert "error" in json.loads(result["body"])
    assert management_api.requests == 0
