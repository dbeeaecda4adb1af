"""Delivery of server frames to connections: the Poster protocol, its failure, and the boto3 poster.

The fan-out engine AWS uses is shared/signed_poster.py; this boto3 poster is the reference it is measured
against (bench/posting.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from shared.errors import ConnectionGone

logger = logging.getLogger(__name__)

FANOUT_THREADS = 32


class Poster(Protocol):
    def post(self, connection_id: str, frame: bytes) -> None: ...

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]: ...

    def disconnect(self, connection_id: str) -> None:
        """`DELETE /@connections/{id}`: close the connection; one already gone is not an error."""

    def is_connected(self, connection_id: str) -> bool:
        """`GET /@connections/{id}`: False when it answers 410 Gone; CheckFailed when it answers anything else."""

    def flush(self) -> None:
        """Deliver what this invocation posted so far. API Gateway's posters deliver each post when it is made
        (nothing to do); the local gateway's holds an invocation's posts until the function returns."""


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

    def flush(self) -> None:
        return  # each post is delivered when made

    def disconnect(self, connection_id: str) -> None:
        with contextlib.suppress(self.client.exceptions.GoneException):  # already closed: what was asked for
            self.client.delete_connection(ConnectionId=connection_id)

    def is_connected(self, connection_id: str) -> bool:
        try:
            self.client.get_connection(ConnectionId=connection_id)
        except self.client.exceptions.GoneException:
            return False
        except BotoClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise CheckFailed(connection_id, int(status)) from error
        except BotoCoreError as error:  # no answer at all: refused, reset, timed out
            raise CheckFailed(connection_id, 0) from error
        return True

    def post_many(self, connection_ids: Iterable[str], frame: bytes) -> list[str]:
        """Post one frame to many connections concurrently; return the ones that are gone."""
        ids = list(connection_ids)
        if len(ids) <= 1:
            return [cid for cid in ids if not self._delivered(cid, frame)]
        with ThreadPoolExecutor(max_workers=min(self.threads, len(ids))) as pool:
            return [
                cid
                for cid, ok in zip(ids, pool.map(lambda cid: self._delivered(cid, frame), ids), strict=True)
                if not ok
            ]

    def _delivered(self, connection_id: str, frame: bytes) -> bool:
        try:
            self.post(connection_id, frame)
        except ConnectionGone:
            return False
        except BotoClientError as error:
            # One failing connection must not stop the fan-out; it gets the next push.
            logger.warning("a post failed: %s", error.response.get("Error", {}).get("Code"))
            logger.debug("post to %s failed", connection_id)
        return True


class ManagementApiFailed(Exception):
    """@connections answered with an error other than 410 (status 0: no answer at all), after the retries."""

    request = "request for"

    def __init__(self, connection_id: str, status: int) -> None:
        reason = f"HTTP {status}" if status else "no HTTP answer (connection error or timeout)"
        super().__init__(f"{self.request} {connection_id} failed with {reason}")
        self.connection_id = connection_id
        self.status = status


class PostFailed(ManagementApiFailed):
    """A post that neither arrived nor met 410 Gone."""

    request = "post to"


class CheckFailed(ManagementApiFailed):
    """A `GET /@connections/{id}` that answered neither 200 nor 410 Gone: whether the connection is there is unknown."""

    request = "GET of"
