"""The template reader's route resolution on small templates: each shape of Target and IntegrationUri that
CloudFormation allows and the reader understands, and one clear error for the rest."""

from __future__ import annotations

from typing import Any

import pytest

from local_gateway.template import Template, TemplateError, references

PREFIX = "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"


def build(target: Any, uri: Any, *, function_type: str = "AWS::Serverless::Function") -> Template:
    """One route (Route, $connect) to one integration (Integration) to one function (Fn), plus a decoy function."""
    route: dict[str, Any] = {"ApiId": {"Ref": "Api"}, "RouteKey": "$connect"}
    if target is not None:
        route["Target"] = target
    integration: dict[str, Any] = {"ApiId": {"Ref": "Api"}, "IntegrationType": "AWS_PROXY"}
    if uri is not None:
        integration["IntegrationUri"] = uri
    return Template(
        {
            "Resources": {
                "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {}},
                "Route": {"Type": "AWS::ApiGatewayV2::Route", "Properties": route},
                "Integration": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": integration},
                "Fn": {"Type": function_type, "Properties": {"Handler": "handlers.connect.handler"}},
                "Other": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "handlers.other.handler"}},
            }
        }
    )


def routes_of(template: Template) -> dict[str, str]:
    return template.route_functions()


SUB_TARGET = {"Fn::Sub": "integrations/${Integration}"}
SUB_URI = {"Fn::Sub": PREFIX + "${Fn.Arn}/invocations"}


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(SUB_TARGET, id="sub-string"),
        pytest.param({"Fn::Sub": ["integrations/${Id}", {"Id": {"Ref": "Integration"}}]}, id="sub-with-variables"),
        pytest.param({"Fn::Join": ["/", ["integrations", {"Ref": "Integration"}]]}, id="join"),
        pytest.param({"Fn::Join": ["", ["integrations/", {"Fn::Sub": "${Integration}"}]]}, id="join-of-sub"),
    ],
)
def test_route_target_shapes(target: Any) -> None:
    template = build(target, SUB_URI)
    assert routes_of(template) == {"$connect": "Fn"}
    assert template.routes() == {"$connect": "handlers.connect.handler"}


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param(SUB_URI, id="sub-arn"),
        pytest.param({"Fn::Sub": "arn:aws:apigateway:us-east-1:lambda:path/functions/${Fn}/invocations"}, id="sub-ref"),
        pytest.param(
            {"Fn::Sub": [PREFIX + "${Arn}/invocations", {"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}]},
            id="sub-with-variables",
        ),
        pytest.param(
            {
                "Fn::Join": [
                    "",
                    [
                        "arn:aws:apigateway:",
                        {"Ref": "AWS::Region"},
                        ":lambda:path/2015-03-31/functions/",
                        {"Fn::GetAtt": ["Fn", "Arn"]},
                        "/invocations",
                    ],
                ]
            },
            id="join",
        ),
        pytest.param({"Fn::GetAtt": ["Fn", "Arn"]}, id="getatt"),
        pytest.param({"Fn::GetAtt": "Fn.Arn"}, id="getatt-dotted"),
        pytest.param({"Ref": "Fn"}, id="ref"),
    ],
)
def test_integration_uri_shapes(uri: Any) -> None:
    assert routes_of(build(SUB_TARGET, uri)) == {"$connect": "Fn"}


def test_plain_lambda_function_resources_count_as_functions() -> None:
    assert routes_of(build(SUB_TARGET, SUB_URI, function_type="AWS::Lambda::Function")) == {"$connect": "Fn"}


def test_short_tags_from_yaml() -> None:
    """The YAML short forms (!Sub, !Join, !GetAtt X.Arn, !Ref) load into the shapes above."""
    template = Template.from_yaml(
        """
Resources:
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      RouteKey: $default
      Target: !Join ["/", [integrations, !Ref Integration]]
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      IntegrationUri: !Join ["", [!Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/functions/", !GetAtt Fn.Arn]]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handlers.default.handler
"""
    )
    assert template.routes() == {"$default": "handlers.default.handler"}


def test_the_real_template_resolves_every_route() -> None:
    template = Template.load()
    routes = template.route_functions()
    assert "$connect" in routes
    assert all(template.resources[logical_id]["Type"] == "AWS::Serverless::Function" for logical_id in routes.values())


def test_references() -> None:
    assert references("integrations/abc123") == []
    assert references({"Fn::Sub": "${AWS::Region}/${A}/${B.Arn}/${!Literal}"}) == ["AWS::Region", "A", "B"]
    assert references({"Fn::Sub": ["${X}/${Y}", {"X": "fixed", "Y": {"Ref": "C"}}]}) == ["C"]


@pytest.mark.parametrize(
    ("target", "uri", "message"),
    [
        pytest.param(None, SUB_URI, r"route Route \('\$connect'\) has no Target", id="missing-target"),
        pytest.param(
            "integrations/abc123",
            SUB_URI,
            r"route Route \('\$connect'\): Target 'integrations/abc123' should refer to exactly one "
            r"AWS::ApiGatewayV2::Integration; it refers to none",
            id="plain-string-target",
        ),
        pytest.param(
            {"Fn::If": ["Cond", SUB_TARGET, SUB_TARGET]},
            SUB_URI,
            r"route Route \('\$connect'\): Target is \{'Fn::If': .*\}, which this reader does not understand",
            id="unsupported-intrinsic",
        ),
        pytest.param(
            {"Fn::Sub": "integrations/${Fn}"},
            SUB_URI,
            r"Target \{'Fn::Sub': 'integrations/\$\{Fn\}'\} should refer to exactly one "
            r"AWS::ApiGatewayV2::Integration; it refers to none",
            id="target-names-a-function",
        ),
        pytest.param(
            SUB_TARGET, None, r"integration Integration \(of route Route \('\$connect'\)\) has no", id="no-uri"
        ),
        pytest.param(
            SUB_TARGET,
            "arn:aws:lambda:us-east-1:123456789012:function:connect",
            r"integration Integration \(of route Route \('\$connect'\)\): IntegrationUri "
            r"'arn:aws:lambda:.*:function:connect' should refer to exactly one AWS::Serverless::Function or "
            r"AWS::Lambda::Function; it refers to none",
            id="plain-string-uri",
        ),
        pytest.param(
            SUB_TARGET,
            {"Fn::Join": ["", [{"Fn::GetAtt": ["Fn", "Arn"]}, {"Fn::GetAtt": ["Other", "Arn"]}]]},
            r"IntegrationUri .* should refer to exactly one .*; it refers to Fn, Other",
            id="two-functions",
        ),
        pytest.param(
            SUB_TARGET,
            {"Fn::ImportValue": "SharedFunctionArn"},
            r"integration Integration .*: IntegrationUri is \{'Fn::ImportValue': 'SharedFunctionArn'\}",
            id="import-value",
        ),
        pytest.param(
            SUB_TARGET,
            {"Fn::Join": ["", "not a list"]},
            r"IntegrationUri is \{'Fn::Join': \['', 'not a list'\]\}, which this reader does not understand",
            id="malformed-join",
        ),
    ],
)
def test_unreadable_shapes_raise_template_error(target: Any, uri: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        routes_of(build(target, uri))


def test_route_without_route_key() -> None:
    template = build(SUB_TARGET, SUB_URI)
    del template.resources["Route"]["Properties"]["RouteKey"]
    with pytest.raises(TemplateError, match="route Route has no RouteKey"):
        template.routes()


def test_template_error_is_a_value_error() -> None:
    """Callers that caught ValueError for a bad template still do."""
    assert issubclass(TemplateError, ValueError)
