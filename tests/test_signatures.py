"""The service APIs' SigV4 check holds the credential scope to the API's service (`execute-api` for @connections,
`lambda` for Invoke) and to the functions' region: a signature valid for anything else is refused, as AWS
refuses it."""

from __future__ import annotations

import asyncio
import json

import boto3
import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from starlette.requests import Request

from local_gateway.signatures import WRONG_REGION, SignatureVerifier, wrong_service
from tests.support.servers import http_status
from tests.support.tokens import signed_request


def signed(service: str, region: str, body: bytes = b"{}") -> Request:
    """A request to the gateway as Starlette hands it over, signed with this process's credentials."""
    url = "http://127.0.0.1:4000/@connections/AAAAAAAAAAAAAAA="
    aws = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(boto3.session.Session().get_credentials().get_frozen_credentials(), service, region).add_auth(aws)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/@connections/AAAAAAAAAAAAAAA=",
        "raw_path": b"/@connections/AAAAAAAAAAAAAAA=",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {**aws.headers, "host": "127.0.0.1:4000"}.items()],
    }
    return Request(scope)


def verifier() -> SignatureVerifier:
    checks = SignatureVerifier()
    checks.credentials, checks.region = boto3.session.Session().get_credentials(), "us-east-1"
    return checks


def test_only_the_doors_service_and_the_functions_region_are_accepted():
    checks = verifier()
    assert checks.check(signed("execute-api", "us-east-1"), b"{}", "execute-api") is None
    assert checks.check(signed("lambda", "us-east-1"), b"{}", "lambda") is None
    assert checks.check(signed("lambda", "us-east-1"), b"{}", "execute-api") == wrong_service("execute-api")
    assert checks.check(signed("execute-api", "us-east-1"), b"{}", "lambda") == wrong_service("lambda")
    for service in ("s3", "dynamodb", "iot"):
        assert checks.check(signed(service, "us-east-1"), b"{}", "execute-api") == wrong_service("execute-api")
    for region in ("eu-west-1", "us-east-2", "local"):
        assert checks.check(signed("execute-api", region), b"{}", "execute-api") == WRONG_REGION


async def test_the_gateways_doors_refuse_another_service_or_region(gateway):
    url = f"{gateway.url}/@connections/AAAAAAAAAAAAAAA="
    status, headers, body = await asyncio.to_thread(http_status, signed_request(url, "GET", service="lambda"))
    assert (status, headers["x-amzn-errortype"]) == (403, "ForbiddenException")
    assert json.loads(body) == {"message": "Credential should be scoped to correct service: 'execute-api'."}
    assert (await asyncio.to_thread(http_status, signed_request(url, "GET")))[0] == 410  # signed right: past it
    elsewhere = boto3.client("lambda", endpoint_url=gateway.url, region_name="eu-west-1")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        await asyncio.to_thread(elsewhere.invoke, FunctionName="NoSuchFunction", Payload=b"{}")
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    here = boto3.client("lambda", endpoint_url=gateway.url, region_name="us-east-1")
    with pytest.raises(here.exceptions.ResourceNotFoundException):  # past the check
        await asyncio.to_thread(here.invoke, FunctionName="NoSuchFunction", Payload=b"{}")
