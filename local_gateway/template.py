"""Reads template.yaml, the one source of truth for routes, functions and the table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
SUB_REFERENCE = re.compile(r"\$\{([^!}][^}]*)\}")  # ${Name} or ${Name.Attribute}; ${!Literal} is no reference
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
INTEGRATION_TYPES = ("AWS::ApiGatewayV2::Integration",)


class TemplateError(ValueError):
    """The template has a shape this reader does not understand; the message names the resource and the shape."""


def references(value: Any) -> list[str]:
    """The logical ids (or parameter and pseudo-parameter names) a value refers to, in order.

    Understands plain strings (no references), {"Ref": X}, {"Fn::GetAtt": [X, Attr]} (or "X.Attr"),
    {"Fn::Sub": "..${X}..${X.Attr}.."}, {"Fn::Sub": ["..${V}..", {V: value}]} and {"Fn::Join": [sep, [parts]]};
    raises TemplateError for anything else.
    """
    if isinstance(value, str):
        return []
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref" and isinstance(argument, str):
            return [argument]
        if name == "Fn::GetAtt":
            if isinstance(argument, str):
                argument = argument.split(".", 1)
            if isinstance(argument, list) and len(argument) == 2 and all(isinstance(a, str) for a in argument):
                return [argument[0]]
        if name == "Fn::Sub":
            if isinstance(argument, str):
                return _sub_references(argument, {})
            if (
                isinstance(argument, list)
                and len(argument) == 2
                and isinstance(argument[0], str)
                and isinstance(argument[1], dict)
            ):
                return _sub_references(argument[0], argument[1])
        if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], list):
            return [found for part in argument[1] for found in references(part)]
    raise TemplateError(f"is {_shape(value)}, which this reader does not understand")


def _sub_references(text: str, variables: dict[str, Any]) -> list[str]:
    found = []
    for match in SUB_REFERENCE.finditer(text):
        name = match.group(1).strip()
        if name in variables:
            found += references(variables[name])
        else:
            found.append(name.split(".", 1)[0])
    return found


def _shape(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


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
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise TemplateError(f"!{suffix} on a {type(node).__name__}")
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> Template:
        return cls.from_yaml(path.read_text())

    @classmethod
    def from_yaml(cls, text: str) -> Template:
        return cls(yaml.load(text, Loader=_CfnLoader))

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.body["Resources"]
        return resources

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == kind}

    def functions(self) -> list[str]:
        return list(self.of_type("AWS::Serverless::Function"))

    def function_handler(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["Properties"]["Handler"])

    def routes(self) -> dict[str, str]:
        """Route key -> the dotted path of the handler its integration invokes."""
        return {key: self.function_handler(logical_id) for key, logical_id in self.route_functions().items()}

    def route_functions(self) -> dict[str, str]:
        """Route key -> the logical id of the function its integration invokes.

        Each route's Target must name one of the template's integrations and each integration's IntegrationUri one
        of its functions, through !Sub (a string or [string, variables]), !Join, !GetAtt or !Ref; anything else
        raises TemplateError naming the resource and what was found.
        """
        routes = {}
        for route_id, route in self.of_type("AWS::ApiGatewayV2::Route").items():
            props = route.get("Properties") or {}
            if "RouteKey" not in props:
                raise TemplateError(f"route {route_id} has no RouteKey")
            what = f"route {route_id} ({props['RouteKey']!r})"
            if "Target" not in props:
                raise TemplateError(f"{what} has no Target: a route without an integration cannot be served")
            integration_id = self._referenced(what, "Target", props["Target"], INTEGRATION_TYPES)
            integration = self.resources[integration_id].get("Properties") or {}
            what = f"integration {integration_id} (of {what})"
            if "IntegrationUri" not in integration:
                raise TemplateError(f"{what} has no IntegrationUri")
            routes[props["RouteKey"]] = self._referenced(
                what, "IntegrationUri", integration["IntegrationUri"], FUNCTION_TYPES
            )
        return routes

    def _referenced(self, what: str, field: str, value: Any, types: tuple[str, ...]) -> str:
        """The logical id of the one resource of these types that the value refers to."""
        try:
            names = references(value)
        except TemplateError as unsupported:
            raise TemplateError(f"{what}: {field} {unsupported}") from None
        found = sorted({name for name in names if self.resources.get(name, {}).get("Type") in types})
        if len(found) != 1:
            kinds = " or ".join(types)
            refers = f"refers to {', '.join(found)}" if found else "refers to none"
            raise TemplateError(f"{what}: {field} {_shape(value)} should refer to exactly one {kinds}; it {refers}")
        return found[0]

    def handler_for_rule(self, source: str, detail_type: str) -> str:
        """The handler of the one function whose EventBridgeRule matches events of this source and detail-type."""
        found = [
            logical_id
            for logical_id, function in self.of_type("AWS::Serverless::Function").items()
            for event in function["Properties"].get("Events", {}).values()
            if event["Type"] == "EventBridgeRule"
            and source in event["Properties"]["Pattern"].get("source", [source])
            and detail_type in event["Properties"]["Pattern"].get("detail-type", [detail_type])
        ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} functions' EventBridge rules match {source} {detail_type} (one expected)")
        return self.function_handler(found[0])

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
