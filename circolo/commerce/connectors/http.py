"""HTTP to a platform's API: retries with back-off on 429 and 5xx, honouring the wait the
platform asks for; everything else fails at once with a message naming the request."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from circolo.commerce.connectors.base import ConnectorError

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Longest single wait we accept from a Retry-After header before giving up the page.
MAX_WAIT_SECONDS = 120.0


class ApiClient:
    """A small wrapper over httpx.Client used by every connector.

    `retry_after` reads a platform's own rate-limit header (seconds to wait) from a response;
    the default reads Retry-After. Sleeping goes through `sleep` so tests do not wait.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        sleep: Callable[[float], None],
        attempts: int = 6,
        timeout: float = 30.0,
        retry_after: Callable[[httpx.Response], float | None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self.sleep = sleep
        self.attempts = attempts
        self.retry_after = retry_after or _retry_after_header
        # Waits taken, for tests and logs: how often the platform throttled us.
        self.waits: list[float] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The response of the first attempt that is not throttled or a server error.

        ConnectorError when every attempt failed or the platform answered 4xx.
        """
        last = ""
        for attempt in range(self.attempts):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.HTTPError as error:
                last = f"{method} {url}: {error.__class__.__name__}: {error}"
                wait = _backoff(attempt)
            else:
                if response.status_code < 400:
                    return response
                last = f"{method} {url}: HTTP {response.status_code} {response.text[:200]}"
                if response.status_code not in RETRY_STATUSES:
                    raise ConnectorError(last)
                asked = self.retry_after(response)
                wait = _backoff(attempt) if asked is None else asked
                if wait > MAX_WAIT_SECONDS:
                    raise ConnectorError(f"{last} (asked to wait {wait:.0f} s)")
            if attempt + 1 < self.attempts:
                logger.info("retrying in %.2f s: %s", wait, last)
                self.waits.append(wait)
                self.sleep(wait)
        raise ConnectorError(f"gave up after {self.attempts} attempts: {last}")

    def get_json(self, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        response = self.request("GET", url, **kwargs)
        return _json(response, url), response

    def post_json(self, url: str, body: Any, **kwargs: Any) -> tuple[Any, httpx.Response]:
        response = self.request("POST", url, json=body, **kwargs)
        return _json(response, url), response


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise ConnectorError(f"{url}: the answer is not JSON") from error


def _backoff(attempt: int) -> float:
    """Exponential back-off with jitter: about 0.5, 1, 2, 4 ... seconds."""
    return float(min(0.5 * 2**attempt, 30.0) * (0.5 + random.random() / 2))


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
