"""The OpenSearch client, and what "OpenSearch is down" looks like to the rest of the code.

Every call this adapter makes goes through ``call``: a connection failure, a timeout or a
5xx answer becomes ``projections.search.SearchUnavailableError`` (the read API answers 503;
a projector's batch fails before its position moves, and its runner retries: paused until
OpenSearch is back, then resumed from the stored position).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from projections.search import SearchUnavailableError

T = TypeVar("T")
DEFAULT_TIMEOUT = 5.0  # seconds per request


def client(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> OpenSearch:
    """A client of the cluster at ``url`` (``http://host:port``, user:password@ allowed).
    It connects lazily: building it never fails, the first request may."""
    return OpenSearch(
        hosts=[url],
        timeout=timeout,
        max_retries=0,  # a failure is reported at once; the caller decides (retry or 503)
        retry_on_timeout=False,
        http_compress=False,
    )


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except OSConnectionError as error:  # includes ConnectionTimeout
        raise SearchUnavailableError(f"OpenSearch is unreachable: {error.error}") from error
    except TransportError as error:
        if isinstance(error.status_code, int) and error.status_code >= 500:
            raise SearchUnavailableError(
                f"OpenSearch failed ({error.status_code}): {error.error}"
            ) from error
        raise
