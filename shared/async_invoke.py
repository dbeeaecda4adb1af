"""Handing work to another function invocation: how one tick's fan-out grows past one invocation."""

from __future__ import annotations

import json
from typing import Any, Protocol


class Invoker(Protocol):
    def invoke_async(self, payload: dict[str, Any]) -> None: ...


class LambdaInvoker:
    """`Invoke` with InvocationType=Event: Lambda queues it and answers 202 at once."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def invoke_async(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.client.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=body)
