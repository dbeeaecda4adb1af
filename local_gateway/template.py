"""Reads template.yaml, the one source of truth for routes, functions and the table."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
FUNCTION_ARN = re.compile(r"\$\{(\w+)\.Arn\}")
INTEGRATION = re.compile(r"\$\{(\w+)\}")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) kept as {"Fn::X": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> Template:
        return cls(yaml.load(path.read_text(), Loader=_CfnLoader))

    @property
    def resources(self) -> dict[str, Any]:
        return self.body["Resources"]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == kind}

    def functions(self) -> list[str]:
        return list(self.of_type("AWS::Serverless::Function"))

    def function_handler(self, logical_id: str) -> str:
        return self.resources[logical_id]["Properties"]["Handler"]

    def routes(self) -> dict[str, str]:
        """Route key -> the dotted path of the handler its integration invokes."""
        routes = {}
        for route in self.of_type("AWS::ApiGatewayV2::Route").values():
            props = route["Properties"]
            integration_id = INTEGRATION.search(props["Target"]["Fn::Sub"]).group(1)
            uri = self.resources[integration_id]["Properties"]["IntegrationUri"]["Fn::Sub"]
            routes[props["RouteKey"]] = self.function_handler(FUNCTION_ARN.search(uri).group(1))
        return routes

    def handler_for_event(self, event_type: str) -> str:
        """The handler of the one function with an event source of this SAM type (Schedule, EventBridgeRule)."""
        for logical_id, function in self.of_type("AWS::Serverless::Function").items():
            events = function["Properties"].get("Events", {})
            if any(source["Type"] == event_type for source in events.values()):
                return self.function_handler(logical_id)
        raise LookupError(f"no function in the template has a {event_type} event")

    def function_environment(self, logical_id: str) -> dict[str, Any]:
        """Globals' variables overlaid with the function's own (values may be intrinsics)."""
        shared = self.body.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.resources[logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        return {**shared, **own}

    def table_definition(self) -> dict[str, Any]:
        """create_table arguments (less TableName) for the table the template defines."""
        (table,) = self.of_type("AWS::DynamoDB::Table").values()
        props = table["Properties"]
        definition = {
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        return definition

    def ttl_attribute(self) -> str | None:
        (table,) = self.of_type("AWS::DynamoDB::Table").values()
        spec = table["Properties"].get("TimeToLiveSpecification") or {}
        return spec.get("AttributeName") if spec.get("Enabled") else None


@lru_cache(maxsize=1)
def template() -> Template:
    return Template.load()


def stage_name(source: Template) -> str:
    """The stage the deployed API serves (the StageName parameter's default): the local raw endpoint's path."""
    return str(source.body.get("Parameters", {}).get("StageName", {}).get("Default", "prod"))


def route_response_keys(source: Template) -> set[str]:
    """Route keys with a route response: only there does a function's answer reach the client."""
    route_ids = {
        response["Properties"]["RouteId"].get("Ref")
        for response in source.of_type("AWS::ApiGatewayV2::RouteResponse").values()
    }
    return {
        route["Properties"]["RouteKey"]
        for logical_id, route in source.of_type("AWS::ApiGatewayV2::Route").items()
        if logical_id in route_ids
    }


def function_timeout(source: Template, logical_id: str | None = None) -> float:
    """A function's Timeout (seconds), the Globals' when it has none of its own."""
    default = source.body.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    if logical_id is None:
        return float(default)
    return float(source.resources[logical_id]["Properties"].get("Timeout", default))
