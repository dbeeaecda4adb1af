"""The direct transport's calls, without what botocore prepares for a request that never leaves this process.

botocore spends about half a millisecond on each call before the direct transport's `before-call` hook answers it:
the endpoint's rules, the user-agent string, the JSON body. Its client skips those for the item reads
and writes (`_make_api_call` replaced on that one client, botocore 1.44.5's steps less those), and keeps what the
product relies on: the `provide-client-params` and `before-parameter-build` hooks, botocore's parameter
validation against the service model, the `before-call` and `after-call` hooks, the answer as botocore parses
it and the error classes raised. What it gives up: endpoint resolution (its hooks and its errors, such as
`account_id_endpoint_mode="required"` without an account), `auth_scheme_preference`, and a `before-call` hook
sees the parameters unserialized (`params["body"]` a dict, no headers). The transport serializes them itself only
when moto, not the item engine, answers (local_gateway/dynamodb/moto_transports.py).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def skip_request_building(client: Any, operations: Collection[str]) -> None:
    from botocore.validate import validate_parameters

    original = client._make_api_call
    meta = client.meta
    service_id = meta.service_model.service_id.hyphenize()

    def make_api_call(operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        if operation_name not in operations:
            return original(operation_name, api_params)  # type: ignore[no-any-return]
        model = meta.service_model.operation_model(operation_name)
        context = {
            "client_region": meta.region_name,
            "client_config": meta.config,
            "has_streaming_input": False,
            "auth_type": model.resolved_auth_type,
            "unsigned_payload": model.unsigned_payload,
            "auth_options": meta.service_model.metadata.get("auth"),
        }
        api_params = client._emit_api_params(api_params=api_params, operation_model=model, context=context)
        if meta.config.parameter_validation:
            validate_parameters(api_params, model.input_shape)
        request = {
            "url_path": "/",
            "query_string": "",
            "method": "POST",
            "headers": {},
            "body": api_params,  # unserialized: see local_gateway/dynamodb/moto_transports.py
            "url": meta.endpoint_url,
            "context": context,
        }
        _, response = meta.events.emit_until_response(
            f"before-call.{service_id}.{operation_name}",
            model=model,
            params=request,
            request_signer=client._request_signer,
            context=context,
        )
        if response is None:
            raise RuntimeError(f"the direct transport did not answer {operation_name}")
        http, parsed = response
        meta.events.emit(
            f"after-call.{service_id}.{operation_name}", http_response=http, parsed=parsed, model=model, context=context
        )
        if http.status_code >= 300:
            raise client.exceptions.from_code(parsed.get("Error", {}).get("Code"))(parsed, operation_name)
        return parsed  # type: ignore[no-any-return]

    client._make_api_call = make_api_call
