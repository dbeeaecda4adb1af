"""botocore's standard retry mode, for the fan-out engine: what to retry, how long to wait, and the retry quota.

The same numbers as botocore.retries.standard and botocore.retries.quota (botocore 1.44): a throttling answer
(429) backs off from 1 s and costs 5 from the quota, anything transient (500, 502, 503, 504, or no answer at
all: refused, reset, dropped, timed out) backs off from 50 ms and costs 14; the quota holds 500, a success
gives back what its retry took, or 1 when it needed none. The delay before retry i (1-based) is
`random() * min(base_scale * 2 ** (i - 1), 20)` seconds. botocore's `x-amz-retry-after` header is not read:
API Gateway's @connections does not send it.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable

NO_ANSWER = 0  # the status a post records when no HTTP answer came back
THROTTLING_STATUSES = frozenset({429})
TRANSIENT_STATUSES = frozenset({NO_ANSWER, 500, 502, 503, 504})
BACKOFF_BASE = 2.0
MAX_BACKOFF_SECONDS = 20.0
THROTTLING_BASE_SCALE = 1.0  # seconds: throttling means the account's rate is spent, so wait long
TRANSIENT_BASE_SCALE = 0.05
QUOTA_CAPACITY = 500
THROTTLING_RETRY_COST = 5
RETRY_COST = 14
NO_RETRY_INCREMENT = 1


def is_retryable(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status in THROTTLING_STATUSES


class StandardRetries:
    """One poster's retry policy and its quota, shared by every post of every fan-out of that poster.

    Not locked: the engine calls it only from its one event-loop thread.
    """

    def __init__(
        self,
        max_attempts: int = 3,
        random: Callable[[], float] = _random.random,
        capacity: int = QUOTA_CAPACITY,
    ) -> None:
        self.max_attempts = max_attempts  # the first attempt included, as botocore's total_max_attempts
        self.capacity = capacity
        self.available = capacity
        self._random = random

    def delay(self, status: int, attempt: int) -> float:
        """Seconds to wait after the 1-based `attempt` failed with `status`."""
        scale = THROTTLING_BASE_SCALE if status in THROTTLING_STATUSES else TRANSIENT_BASE_SCALE
        return self._random() * min(scale * BACKOFF_BASE ** (attempt - 1), MAX_BACKOFF_SECONDS)

    def acquire(self, status: int) -> int:
        """Take a retry's cost from the quota; the cost taken, or 0 when the quota cannot pay (no retry)."""
        cost = THROTTLING_RETRY_COST if status in THROTTLING_STATUSES else RETRY_COST
        if cost > self.available:
            return 0
        self.available -= cost
        return cost

    def succeeded(self, last_cost: int) -> None:
        """A 2xx: give back what the last retry took, or NO_RETRY_INCREMENT when there was none."""
        if self.available < self.capacity:
            self.available = min(self.capacity, self.available + (last_cost or NO_RETRY_INCREMENT))
