"""The item engine's answers (local_gateway/dynamodb/item_engine.py and the modules of its requests): their shape,
and DynamoDB's ValidationException with the messages more than one request gives (DynamoDB's wording, which moto
quotes: docs/embedded-dynamodb.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Answer = tuple[int, dict[str, Any]]  # HTTP status, the answer as botocore parses it (less ResponseMetadata)
DUPLICATES = "Provided list of item keys contains duplicates"
EMPTY_NAME = "ExpressionAttributeNames contains invalid value: Empty attribute name for key {}"


def validation_error(message: str) -> Answer:
    return 400, {"Error": {"Message": message, "Code": "ValidationException"}}


def refused(refusals: list[str]) -> Answer | None:
    """DynamoDB's ValidationException, when there is one refusal: of two, which DynamoDB names first is unsure."""
    return validation_error(refusals[0]) if len(refusals) == 1 else None


def empty_names(names: Mapping[str, str] | None) -> list[str]:
    """DynamoDB's refusal of an empty attribute name behind a placeholder, used or not (the first one's)."""
    return [EMPTY_NAME.format(placeholder) for placeholder, name in (names or {}).items() if name == ""][:1]
