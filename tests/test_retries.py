"""The fan-out engine's retries (shared/retries.py) against botocore's standard mode: the same exponential
backoff with its cap, and the same retry quota cost."""

from __future__ import annotations

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryContext,
    RetryEventAdapter,
    RetryQuotaChecker,
    ThrottlingErrorDetector,
)

from shared.retries import NO_ANSWER, StandardRetries


def botocore_context(status: int, attempt: int) -> RetryContext:
    """What botocore's standard mode sees after a failed attempt: an HTTP answer, or (status 0) none."""
    if status == NO_ANSWER:
        return RetryContext(
            attempt, caught_exception=EndpointConnectionError(endpoint_url="https://x"), request_context={}
        )
    return RetryContext(attempt, http_response=AWSResponse("https://x", status, {}, None), request_context={})


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, NO_ANSWER])
def test_backoff_is_botocores_exponential_backoff_with_its_20_second_cap(status: int) -> None:
    detector = ThrottlingErrorDetector(RetryEventAdapter())
    for draw in (1.0, 0.37, 0.0):
        ours = StandardRetries(max_attempts=20, random=lambda draw=draw: draw)
        theirs = ExponentialBackoff(random=lambda draw=draw: draw, throttling_detector=detector)
        for attempt in range(1, 16):
            assert ours.delay(status, attempt) == pytest.approx(theirs.delay_amount(botocore_context(status, attempt)))
    assert StandardRetries(random=lambda: 1.0).delay(status, 15) == 20.0  # 2**14 * 50 ms is far past the cap


@pytest.mark.parametrize("status", [429, 500, 503, NO_ANSWER])
def test_retry_costs_the_same_quota_as_botocore(status: int) -> None:
    quota = RetryQuota()
    RetryQuotaChecker(quota, ThrottlingErrorDetector(RetryEventAdapter())).acquire_retry_quota(
        botocore_context(status, 1)
    )
    ours = StandardRetries()
    assert ours.acquire(status) == 500 - quota.available_capacity
    assert ours.available == quota.available_capacity
