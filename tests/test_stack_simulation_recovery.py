"""Connection state recovery through the simulated stack (tests/support/simulated_stack.py): a JSON client's
resume route, a Socket.IO client's CONNECT at `$default`, a half-open connection taken over; every call within
the function's grants."""

from __future__ import annotations

import json
from urllib.parse import quote

from tests import stack
from tests.support.events import disconnect_event
from tests.support.simulated_stack import (
    SOCKETIO_QUERY,
    A,
    B,
    C,
    S,
    T,
    U,
    assert_least_privilege,
    connect_answer,
    dashboard_update,
    frame,
)


def test_stack_simulation_a_recovery_through_the_deployed_functions(simulated, management_api):
    """A JSON client starts a session, drops, and takes it over on a new connection (the resume route); a
    Socket.IO client does the same in its CONNECT (at $default), and so does one whose old connection API Gateway
    has not noticed gone yet (a half-open one, taken over and closed)."""
    assert simulated.connect(A, "alice") == 200
    started = simulated.send(A, frame("resume"))
    assert started["ok"] is True and started["recovered"] is False
    assert simulated.send(A, frame("analytics:joinDashboard", "sales")) == {"ok": True}
    assert simulated.send(A, frame("analytics:subscribeLiveMetrics")) == {"ok": True}
    assert simulated.put_event(dashboard_update("sales", {"n": 1})) == {"delivered": 1, "gone": 0}
    offset = management_api.events(A)[-1]["offset"]
    event = disconnect_event(A)
    event["requestContext"]["disconnectStatusCode"] = 1006  # a drop, not a goodbye
    assert simulated.invoke(simulated.routes["$disconnect"], event)["statusCode"] == 200
    assert simulated.put_event(dashboard_update("sales", {"n": 2})) == {"delivered": 0, "gone": 0}
    assert simulated.put_event(dashboard_update("sales", {"n": 3})) == {"delivered": 0, "gone": 0}

    assert simulated.connect(B, "alice") == 200
    resumed = simulated.send(B, frame("resume", {"session": started["session"], "offset": offset}))
    assert resumed == {"ok": True, "session": started["session"], "recovered": True}
    b = management_api.events(B)
    assert [m["event"] for m in b] == [
        "analytics:liveMetrics",
        "analytics:dashboardUpdate",
        "analytics:dashboardUpdate",
    ]
    assert [m["data"]["data"] for m in b[1:]] == [{"n": 2}, {"n": 3}]
    assert simulated.put_event(dashboard_update("sales", {"n": 4})) == {"delivered": 1, "gone": 0}
    assert management_api.events(B)[-1]["data"]["data"] == {"n": 4}
    # Another user presenting the session gets a new one.
    assert simulated.connect(C, "mallory") == 200
    assert simulated.send(C, frame("resume", {"session": started["session"]}))["recovered"] is False

    # Socket.IO at $default: the CONNECT carries {pid, offset}. S's connection is still registered (half-open):
    # the recovery takes it over and closes it.
    assert simulated.connect(S, query=SOCKETIO_QUERY) == 200
    pid = connect_answer(simulated, management_api, S, "40")["pid"]
    assert simulated.send_socketio(S, '420["analytics:joinDashboard","ops"]') == '430[{"ok":true}]'
    assert simulated.connect(T, query=SOCKETIO_QUERY) == 200
    answer = connect_answer(simulated, management_api, T, "40" + json.dumps({"pid": pid}))
    assert answer == {"sid": S, "pid": pid}  # the same sid and pid: `socket.recovered` is true on the client
    assert ("DELETE", f"/{stack.STAGE}/@connections/{quote(S)}") in management_api.served
    assert simulated.put_event(dashboard_update("ops", {"n": 1})) == {"delivered": 1, "gone": 0}

    # A deliberate leave (1000) of a connection a publisher already found gone ends its session all the same.
    management_api.gone.add(T)
    assert simulated.put_event(dashboard_update("ops", {"n": 2})) == {"delivered": 0, "gone": 1}
    leaving = disconnect_event(T)
    leaving["requestContext"]["disconnectStatusCode"] = 1000
    assert simulated.invoke(simulated.routes["$disconnect"], leaving)["statusCode"] == 200
    assert simulated.connect(U, query=SOCKETIO_QUERY) == 200
    assert connect_answer(simulated, management_api, U, "40" + json.dumps({"pid": pid}))["pid"] != pid

    assert "ResumeFunction" in simulated.calls
    assert_least_privilege(simulated)
