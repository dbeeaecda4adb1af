"""Delivery of server frames to connections through the API Gateway Management API."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import quote

from botocore.exceptions import ClientError as BotoClientError
from urllib3.exceptions import HTTPError

from shared.errors import ConnectionGone

logger = logging.getLogger(__name__)

FANOUT_THREADS = 32


class Poster(Protocol):
    def post(self, connection_id: str, frame: bytes) -> None: ...

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]: ...


class ManagementApiPoster:
    """`POST /@connections/{id}` through boto3; a 410 becomes ConnectionGone."""

    def __init__(self, client: Any, threads: int = FANOUT_THREADS) -> None:
        self.client = client
        self.threads = threads

    def post(self, connection_id: str, frame: bytes) -> None:
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=frame)
        except self.client.exceptions.GoneException:
            raise ConnectionGone(connection_id) from None

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        """Post one frame to many connections concurrently; return the ones that are gone."""
        ids = list(connection_ids)
        if len(ids) <= 1:
            return [cid for cid in ids if not self._delivered(cid, frame)]
        with ThreadPoolExecutor(max_workers=min(self.threads, len(ids))) as pool:
            return [cid for cid, ok in zip(ids, pool.map(lambda cid: self._delivered(cid, frame), ids)) if not ok]

    def _delivered(self, connection_id: str, frame: bytes) -> bool:
        try:
            self.post(connection_id, frame)
        except ConnectionGone:
            return False
        except BotoClientError as error:
            # One failing connection must not stop the fan-out; it gets the next push.
            logger.warning("post to %s failed: %s", connection_id, error.response.get("Error", {}).get("Code"))
        return True


class PostFailed(Exception):
    """@connections answered with an error other than 410, after the retries."""

    def __init__(self, connection_id: str, status: int) -> None:
        super().__init__(f"post to {connection_id} failed with HTTP {status}")
        self.connection_id = connection_id
        self.status = status


class SignedPoster:
    """The fan-out engine: `POST /@connections/{id}` over pooled keep-alive connections (urllib3), signed
    with botocore's own SigV4 signer, from a thread pool that lives as long as the process.

    It skips boto3's per-call machinery (parameter validation, event hooks, response parsing), which is
    most of the CPU a post costs; 410 becomes ConnectionGone, 429 and 5xx are retried with jittered backoff
    as boto3's standard mode would, and anything else becomes PostFailed.
    """

    RETRYABLE = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self, endpoint_url: str, credentials: Any, region: str, threads: int = FANOUT_THREADS, attempts: int = 6
    ) -> None:
        import urllib3
        from botocore.auth import SigV4Auth

        self.endpoint_url = endpoint_url.rstrip("/")
        self.signer = SigV4Auth(credentials, "execute-api", region)
        self.threads = threads
        self.attempts = attempts
        self.http = urllib3.PoolManager(
            maxsize=threads, retries=False, timeout=urllib3.Timeout(connect=3.0, read=10.0)
        )
        self._pool: ThreadPoolExecutor | None = None

    def post(self, connection_id: str, frame: bytes) -> None:
        for attempt in range(self.attempts):
            status = self._send(connection_id, frame)
            if status < 300:
                return
            if status == 410:
                raise ConnectionGone(connection_id)
            if status not in self.RETRYABLE or attempt == self.attempts - 1:
                raise PostFailed(connection_id, status)
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        """Post one frame to many connections concurrently; return the ones that are gone."""
        ids = list(connection_ids)
        if len(ids) <= 1:
            return [cid for cid in ids if not self._delivered(cid, frame)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="poster")
        delivered = self._pool.map(lambda cid: self._delivered(cid, frame), ids)
        return [cid for cid, ok in zip(ids, delivered) if not ok]

    def _send(self, connection_id: str, frame: bytes) -> int:
        from botocore.awsrequest import AWSRequest

        url = f"{self.endpoint_url}/@connections/{quote(connection_id, safe='')}"
        request = AWSRequest(method="POST", url=url, data=frame)
        self.signer.add_auth(request)
        response = self.http.request("POST", url, body=frame, headers=dict(request.headers.items()))
        return response.status

    def _delivered(self, connection_id: str, frame: bytes) -> bool:
        try:
            self.post(connection_id, frame)
        except ConnectionGone:
            return False
        except (PostFailed, HTTPError) as error:
            # One failing connection must not stop the fan-out; it gets the next push.
            logger.warning("post to %s failed: %s", connection_id, type(error).__name__)
        return True
