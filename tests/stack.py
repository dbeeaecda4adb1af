"""template.yaml as the deployed stack would be: intrinsics resolved to local values, each function's grants,
and the IAM actions a boto3 call needs, so that tests can compare what the code does with what it may do."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from local_gateway.template import Template

REGION, ACCOUNT, API_ID, STAGE = "us-east-1", "123456789012", "abcdef1234", "prod"
SUB = re.compile(r"\$\{([\w:.]+)\}")
FUNCTION = "AWS::Serverless::Function"
# TransactWriteItems is authorised item by item, each against the action of its kind.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def table_arn(table_name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:analytics-{logical_id}"


def invoked_function_arn(function_name: str) -> str:
    """What lambda:InvokeFunction is authorised against: the ARN a FunctionName (a name or an ARN) stands for."""
    return (
        function_name
        if function_name.startswith("arn:")
        else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
    )


def connection_arn(connection_id: str, method: str = "POST") -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}/@connections/{connection_id}"


def local_refs(template: Template, table_name: str) -> dict[str, str]:
    """What !Ref, !GetAtt and ${...} stand for in a stack deployed with the parameters' defaults."""
    refs = {name: str(p["Default"]) for name, p in template.body.get("Parameters", {}).items()}
    refs |= {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "analytics",
        "WebSocketApi": API_ID,
        "Table": table_name,
        "Table.Arn": table_arn(table_name),
    }
    for logical_id in functions(template):
        refs[logical_id] = f"analytics-{logical_id}"
        refs[f"{logical_id}.Arn"] = function_arn(logical_id)
    return refs


def resolve(value: Any, refs: dict[str, str]) -> str:
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref":
            return refs[argument]
        if name == "Fn::GetAtt":
            return refs[".".join(argument)]
        if name == "Fn::Sub" and isinstance(argument, str):
            return SUB.sub(lambda match: refs[match.group(1)], argument)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"no local value for {value!r}")


def functions(template: Template) -> dict[str, dict[str, Any]]:
    return template.of_type(FUNCTION)


def functions_with_event(template: Template, event_type: str) -> list[str]:
    return sorted(
        name
        for name, function in functions(template).items()
        if any(source["Type"] == event_type for source in function["Properties"].get("Events", {}).values())
    )


def function_with_event(template: Template, event_type: str) -> str:
    (logical_id,) = functions_with_event(template, event_type)
    return logical_id


def environment(template: Template, logical_id: str, refs: dict[str, str]) -> dict[str, str]:
    return {name: resolve(value, refs) for name, value in template.function_environment(logical_id).items()}


def statements(template: Template, logical_id: str) -> list[dict[str, Any]]:
    """Every statement the function's Policies hold: inline ones and those of the managed policies it refers to."""
    found = []
    for policy in functions(template)[logical_id]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and set(policy) == {"Ref"}:
            found += template.resources[policy["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
        elif isinstance(policy, dict) and "Statement" in policy:
            found += policy["Statement"]
        else:
            raise ValueError(f"{logical_id}: a policy this check cannot read: {policy!r}")
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(template: Template, logical_id: str, refs: dict[str, str]) -> set[tuple[str, str]]:
    """(action, resource pattern) pairs the function's role allows, beyond SAM's basic logging role."""
    allowed = set()
    for statement in statements(template, logical_id):
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            raise ValueError(f"{logical_id}: only plain Allow statements are expected: {statement!r}")
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                allowed.add((action, resolve(resource, refs)))
    return allowed


def allows(granted: set[tuple[str, str]], action: str, resource: str) -> bool:
    return any(action == a and fnmatchcase(resource, pattern) for a, pattern in granted)


def required(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs one DynamoDB call is authorised against."""
    if operation == "TransactWriteItems":
        return [
            (f"dynamodb:{TRANSACT_ACTIONS[kind]}", table_arn(body["TableName"]))
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(f"dynamodb:{operation}", table_arn(name)) for name in params["RequestItems"]]
    resource = table_arn(params["TableName"])
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", resource)]
