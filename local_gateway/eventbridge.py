"""EventBridge's part on the gateway: a service publishes with an HTTP POST of JSON, and the event EventBridge
would deliver goes to the function the template's rule routes it to. POST /dashboards/{id}/updates is a
DashboardUpdate, POST /metrics a MetricReport; both are guarded alike (JSON only; this machine or a signed
request) and answer 202 with the function's body, or its refusal's status."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from local_gateway.apigateway import events
from local_gateway.awslambda.invoker import Handler
from local_gateway.bodies import BodyIncomplete, BodyTooLarge, bounded_body
from local_gateway.nesting import MAX_NESTING, too_deep
from local_gateway.signatures import SignatureVerifier, is_loopback
from shared.contract import METRIC_REPORT_DETAIL_TYPE, UPDATE_DETAIL_TYPE, UPDATE_SOURCE

DETAIL_TYPES = (UPDATE_DETAIL_TYPE, METRIC_REPORT_DETAIL_TYPE)
Invoke = Callable[[Handler, dict[str, Any], str], Awaitable[dict[str, Any]]]


class EventRoutes:
    """`functions`: the handler the template's rule names for each detail-type (replaceable, for a test);
    `invoke`: how the gateway runs a function of its own."""

    def __init__(self, functions: Mapping[str, Handler], verifier: SignatureVerifier, invoke: Invoke) -> None:
        self.functions = dict(functions)
        self.verifier = verifier
        self.invoke = invoke

    def routes(self) -> list[Route]:
        return [
            Route("/dashboards/{dashboard_id}/updates", self._dashboard_update, methods=["POST"]),
            Route("/metrics", self._metric_report, methods=["POST"]),
        ]

    async def _dashboard_update(self, request: Request) -> JSONResponse:
        def detail(data: Any) -> dict[str, Any]:
            return {"dashboardId": request.path_params["dashboard_id"], "data": data}

        return await self._publish(request, UPDATE_DETAIL_TYPE, detail)

    async def _metric_report(self, request: Request) -> JSONResponse:
        return await self._publish(request, METRIC_REPORT_DETAIL_TYPE, lambda data: data)

    async def _publish(self, request: Request, detail_type: str, detail: Callable[[Any], Any]) -> JSONResponse:
        # Only JSON: a web page may send text/plain cross-origin without a preflight, never application/json.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"error": "The body must be application/json"}, status_code=415)
        try:
            body = await bounded_body(request)
        except BodyTooLarge:
            return JSONResponse({"error": "The body is too large"}, status_code=413)
        except BodyIncomplete:  # the client has gone: this answer reaches nobody
            return JSONResponse({"error": "The body did not arrive in time"}, status_code=408)
        # Signed as a call to the API (execute-api), as the Management API's callers sign.
        if not is_loopback(request) and self.verifier.check(request, body, "execute-api") is not None:
            return JSONResponse({"error": "Only this machine, or a signed request, may publish"}, status_code=403)
        if too_deep(body):
            return JSONResponse({"error": f"The body nests more than {MAX_NESTING} levels"}, status_code=400)
        try:
            data = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "The body must be JSON"}, status_code=400)
        event = events.eventbridge_event(UPDATE_SOURCE, detail_type, detail(data))
        handler = self.functions[detail_type]
        result = await self.invoke(handler, event, handler.__module__.rpartition(".")[2])
        status = result.get("statusCode", 500)
        try:
            answer = json.loads(result.get("body") or "{}")
        except ValueError:
            answer = {"error": "Internal server error"}
        return JSONResponse(answer, status_code=202 if status == 200 else status)
