"""asyncapi.yaml: valid AsyncAPI 3.0 (the official schema, from the pinned @asyncapi/specs), and the same events,
names and limits as the code (shared/contract.py, shared/actions.py's COMMANDS). The end-to-end tests hold the
server's frames to its schemas (tests/support/contract.py: contract_validator())."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from local_gateway.template import stage_name, template
from shared import contract
from shared.actions import COMMANDS
from shared.history import LONGEST_OFFSET, OFFSET
from shared.metrics import iso_timestamp
from shared.sessions import MAX_PID_LENGTH, new_pid
from tests.support.contract import ASYNCAPI, asyncapi_document, contract_validator

ROOT = Path(__file__).resolve().parent.parent
SPECS = Path(__file__).parent / "js" / "node_modules" / "@asyncapi" / "specs"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def message_names(document: dict[str, Any], action: str, channel: str) -> list[str]:
    messages = document["components"]["messages"]
    return [
        messages[ref["$ref"].rsplit("/", 1)[1]]["name"]
        for operation in document["operations"].values()
        if operation["action"] == action and operation["channel"]["$ref"] == f"#/channels/{channel}"
        for ref in operation["messages"]
    ]


def test_asyncapi_document_is_valid_asyncapi_3_0_by_the_official_schema(document):
    package = json.loads((SPECS / "package.json").read_text())
    pinned = json.loads((ROOT / "tests" / "js" / "package.json").read_text())["dependencies"]["@asyncapi/specs"]
    assert package["version"] == pinned, "run `npm ci` in tests/js (make test does)"
    schema = json.loads((SPECS / "schemas" / "3.0.0.json").read_text())
    assert document["asyncapi"] == "3.0.0"
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(error.absolute_path)}: {error.message[:300]}" for error in validator.iter_errors(document)]
    assert errors == []
    # The schema does catch mistakes (it resolves its own definitions, offline).
    broken = {**document, "operations": {**document["operations"], "liveMetrics": {"action": "emit"}}}
    assert list(validator.iter_errors(broken))


def test_asyncapi_events_are_the_codes_events(document):
    assert message_names(document, "receive", "socketio") == list(contract.CLIENT_EVENTS)
    assert sorted(COMMANDS) == sorted(message_names(document, "receive", "socketio"))
    assert message_names(document, "send", "socketio") == list(contract.SERVER_EVENTS)
    assert contract_validator().server_events == list(contract.SERVER_EVENTS)
    schemas = document["components"]["schemas"]
    actions = [name for variant in schemas["ClientFrame"]["oneOf"] for name in variant["properties"]["action"]["enum"]]
    assert sorted(actions) == sorted([*contract.CLIENT_EVENTS, contract.RESUME])
    events = [v["properties"]["event"]["const"] for v in schemas["ServerFrame"]["oneOf"] if "properties" in v]
    assert sorted(events) == sorted(contract.SERVER_EVENTS)


def test_asyncapi_limits_and_names_are_the_contracts(document):
    schemas = document["components"]["schemas"]
    dashboard_id = schemas["DashboardId"]
    assert dashboard_id["pattern"] == f"^{contract.DASHBOARD_ID.pattern}$"
    assert dashboard_id["maxLength"] == contract.MAX_ID_LENGTH and dashboard_id["minLength"] == 1
    # The three counts, then CPU and memory each when there is a value, then the reported metrics.
    variants = [schemas[ref["$ref"].rsplit("/", 1)[1]] for ref in schemas["LiveMetrics"]["oneOf"]]
    systems = [(), (contract.CPU_USAGE,), (contract.MEMORY_USAGE,), contract.SYSTEM_METRIC_NAMES]
    for variant, system in zip(variants, systems, strict=True):
        names = [schemas[item["$ref"].rsplit("/", 1)[1]]["properties"]["name"]["const"] for item in variant["items"]]
        assert names == [*contract.COUNT_METRIC_NAMES, *system]
        assert variant["minItems"] == len(names) and variant["maxItems"] == len(names) + contract.MAX_REPORTED_METRICS
        assert variant["additionalItems"] == {"$ref": "#/components/schemas/ReportedMetric"}
    reported = schemas["ReportedMetric"]["properties"]
    assert reported["name"]["pattern"] == f"^{contract.METRIC_NAME.pattern}$"
    assert reported["name"]["maxLength"] == contract.MAX_METRIC_NAME_LENGTH
    assert reported["name"]["not"]["enum"] == list(contract.METRIC_NAMES)
    assert -reported["value"]["minimum"] == reported["value"]["maximum"] == contract.MAX_METRIC_MAGNITUDE
    assert schemas["Error"]["properties"]["event"]["maxLength"] == contract.MAX_ECHOED_EVENT_NAME
    assert re.fullmatch(schemas["Timestamp"]["pattern"].strip("^$"), iso_timestamp(time.time()))
    stage = stage_name(template())
    assert document["servers"]["deployed"]["variables"]["stage"]["default"] == stage
    assert document["servers"]["localStage"]["pathname"] == f"/{stage}"
    assert document["channels"]["frames"]["parameters"]["stage"]["default"] == stage
    assert contract.INTERNAL_ERROR in document["info"]["description"]
    for offset in [LONGEST_OFFSET, "1796591173448-1-sales", "1-1-sales", "1796591173448-1-", "1796591173448-1-a b"]:
        assert bool(re.fullmatch(schemas["Offset"]["pattern"].strip("^$"), offset)) == bool(OFFSET.fullmatch(offset))
    assert re.fullmatch(schemas["SessionId"]["pattern"].strip("^$"), new_pid())
    assert schemas["SessionId"]["maxLength"] == MAX_PID_LENGTH


def test_contract_validator_refuses_what_the_document_does_not_allow():
    validate = contract_validator()
    timestamp = iso_timestamp(time.time())
    snapshot = [{"name": name, "value": 1, "timestamp": timestamp} for name in contract.METRIC_NAMES]
    validate("analytics:liveMetrics", snapshot)
    for event, payload in [
        ("analytics:liveMetrics", snapshot[::-1]),
        ("analytics:liveMetrics", [{**m, "timestamp": timestamp.replace(".", ",")} for m in snapshot]),
        ("analytics:dashboardUpdate", {"dashboardId": "no spaces", "data": 1, "timestamp": timestamp}),
        ("analytics:error", {"event": "analytics:joinDashboard"}),
        ("ack", {"ok": True, "error": "both"}),
        ("analytics:joinDashboard", "sales"),  # a client event: never sent by the server
    ]:
        with pytest.raises(AssertionError):
            validate(event, payload)
    with pytest.raises(AssertionError):
        validate.frame({"event": "analytics:liveMetrics", "data": snapshot[:2]})


def test_contract_validator_allows_each_shape_the_metrics_take_and_no_other():
    validate = contract_validator()
    timestamp = iso_timestamp(time.time())

    def snapshot(*names: str, value: float = 1) -> list[dict[str, Any]]:
        return [{"name": name, "value": value, "timestamp": timestamp} for name in names]

    counts, (cpu, memory) = contract.COUNT_METRIC_NAMES, contract.SYSTEM_METRIC_NAMES
    for names in [counts, (*counts, cpu), (*counts, memory), (*counts, cpu, memory), (*counts, "Errors", "Queue")]:
        validate("analytics:liveMetrics", snapshot(*names))
    validate("analytics:liveMetrics", snapshot(*counts, cpu, memory) + snapshot("Orders per minute", value=-0.5))
    for names in [counts[:2], (*counts, memory, cpu), (*counts, "Errors", cpu), (*counts, "x" * 65)]:
        with pytest.raises(AssertionError):
            validate("analytics:liveMetrics", snapshot(*names))
    with pytest.raises(AssertionError):
        validate("analytics:liveMetrics", snapshot(*counts, "Errors", value=1e16))


def test_readme_links_the_asyncapi_document():
    readme = (ROOT / "README.md").read_text()
    assert f"]({ASYNCAPI.name})" in readme
