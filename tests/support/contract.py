"""The contract as published (asyncapi.yaml) and a validator of messages against its schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# -- the contract as published: asyncapi.yaml ---------------------------------------------------------------
ASYNCAPI = Path(__file__).resolve().parents[2] / "asyncapi.yaml"
ASYNCAPI_URI = "urn:analytics:asyncapi"


def asyncapi_document() -> dict[str, Any]:
    import yaml

    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return document


class ContractValidator:
    """Validates what the server sent against asyncapi.yaml's schemas; raises AssertionError on a mismatch.

    `validate(event, payload)` for a Socket.IO event (its message `name`) or `"ack"`; `validate.frame(frame)` for a
    JSON frame of the deployed API (a server frame `{"event", "data"}` or an ack)."""

    def __init__(self, document: dict[str, Any]) -> None:
        import jsonschema
        from referencing import Registry
        from referencing.jsonschema import DRAFT7

        registry: Registry[Any] = Registry().with_resource(ASYNCAPI_URI, DRAFT7.create_resource(document))
        messages = document["components"]["messages"]
        sent = [
            ref["$ref"].rsplit("/", 1)[1]
            for operation in document["operations"].values()
            if operation["action"] == "send" and operation["channel"]["$ref"] == "#/channels/socketio"
            for ref in operation["messages"]
        ]
        self.server_events = [messages[key]["name"] for key in sent]  # in the document's order
        self.payloads = {messages[key]["name"]: key for key in [*sent, "ack"]}

        def validator(pointer: str) -> Any:
            return jsonschema.Draft7Validator({"$ref": f"{ASYNCAPI_URI}#{pointer}"}, registry=registry)

        self._events = {name: validator(f"/components/messages/{key}/payload") for name, key in self.payloads.items()}
        self._frame = validator("/components/schemas/ServerFrame")
        self._ack = validator("/components/schemas/Ack")
        self._offset = validator("/components/schemas/Offset")
        self._session = validator("/components/schemas/SessionId")

    @staticmethod
    def _check(validator: Any, what: str, payload: Any) -> None:
        errors = sorted(validator.iter_errors(payload), key=lambda error: list(error.absolute_path))
        if errors:
            details = "; ".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
            raise AssertionError(f"{what} does not match asyncapi.yaml: {details}\n{json.dumps(payload)[:500]}")

    def __call__(self, event: str, payload: Any) -> None:
        if event not in self._events:
            raise AssertionError(f"{event!r} is neither a server event of asyncapi.yaml nor an ack")
        self._check(self._events[event], event, payload)

    def socketio_event(self, event: str, *args: Any) -> None:
        """A Socket.IO event as a client received it: its payload, and a dashboard update's offset after it."""
        self(event, args[0])
        extra = args[1:]
        if event == "analytics:dashboardUpdate" and extra:
            (offset,) = extra
            self._check(self._offset, "offset", offset)
        elif extra:
            raise AssertionError(f"{event} came with more arguments than its payload: {extra!r}")

    def session(self, session: Any) -> None:
        self._check(self._session, "session id", session)

    def frame(self, frame: Any) -> None:
        """A JSON frame the deployed API sent: an ack (the route response) or a server event."""
        if isinstance(frame, dict) and "ok" in frame:
            self._check(self._ack, "ack frame", frame)
        else:
            self._check(self._frame, "server frame", frame)


_contract: ContractValidator | None = None


def contract_validator() -> ContractValidator:
    """The validator of asyncapi.yaml's schemas, built once."""
    global _contract
    if _contract is None:
        _contract = ContractValidator(asyncapi_document())
    return _contract
