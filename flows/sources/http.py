"""A polite HTTP client shared by every source: rate limit, retries with backoff, Retry-After.

Transient failures (timeouts, connection errors, HTTP 429 and 5xx) are retried with exponential
backoff and jitter; 429 honours ``Retry-After`` up to a cap. Any other 4xx is a contract error:
it fails at once and the error quotes the server's own message (secrets redacted: servers echo
requests). Everything is bounded: a total deadline per request (a server trickling bytes cannot
outlast it), a time budget per source, and a size cap on every decompressed body. The clock,
sleep and random source are injectable so the schedule is unit-testable without waiting.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flows.errors import SourceError
from flows.redaction import redact, register_secret

# httpx logs every request URL at INFO; URLs can carry an API key (NCBI), so keep it quiet.
logging.getLogger("httpx").setLevel(logging.WARNING)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_QUOTED_BODY = 600


@dataclass(frozen=True)
class Limits:
    """What one client may spend: time per request and per source, bytes per body."""

    request_deadline_seconds: float = 300.0
    source_deadline_seconds: float = 30 * 60.0
    max_retry_after_seconds: float = 600.0
    max_response_bytes: int = 256 * 1024**2
    max_download_bytes: int = 40 * 1024**3

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(settings.http_request_deadline_seconds, settings.source_deadline_seconds,
                   settings.http_max_retry_after_seconds, settings.http_max_response_bytes,
                   settings.http_max_download_bytes)


class _DeadlineExceeded(Exception):
    """A request ran past its total deadline (retried like a timeout)."""


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    initial_seconds: float = 2.0
    max_seconds: float = 120.0

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, jittered in [0.5, 1.5)."""
        base = min(self.max_seconds, self.initial_seconds * (2 ** (attempt - 1)))
        return base * (0.5 + rng())


@dataclass
class RateLimiter:
    """At most ``per_second`` request starts per second (a minimum spacing between starts)."""

    per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next_allowed: float = field(default=0.0, init=False)

    def wait(self) -> None:
        if self.per_second == float("inf"):
            return
        now = self.clock()
        if now < self._next_allowed:
            self.sleep(self._next_allowed - now)
            now = self._next_allowed
        self._next_allowed = now + 1.0 / self.per_second


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def quote_body(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        text = ""
    text = redact(" ".join(text.split()))
    return text[:MAX_QUOTED_BODY] + ("…" if len(text) > MAX_QUOTED_BODY else "")


class PoliteClient:
    """httpx.Client wrapper for one source. Not thread-safe: one client per task."""

    def __init__(
        self,
        base_url: str,
        *,
        source: str,
        requests_per_second: float = 1.0,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        secret_params: Iterable[str] = (),
        limits: Limits | None = None,
        resumes: bool = False,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.rng = rng
        self.limiter = RateLimiter(requests_per_second, clock=clock, sleep=sleep)
        self.secret_params = frozenset(secret_params)
        self.limits = limits or Limits()
        self.resumes = resumes  # the source resumes from its last landed page after a failure
        self.clock = clock
        self.deadline_at = clock() + self.limits.source_deadline_seconds
        default_headers = {"User-Agent": "betacell/0.1 (stem-cell diabetes evidence warehouse)"}
        default_headers.update(headers or {})
        self._transport = transport
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=default_headers,
            transport=transport,
            follow_redirects=True,
        )

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def describe(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """A loggable description of a request, with secret parameters redacted."""
        shown = {k: ("***" if k in self.secret_params else v) for k, v in (params or {}).items()}
        query = "&".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.source} {path}" + (f"?{query}" if query else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """Send one request with the rate limit and retry policy; return a 2xx response (or None
        for an HTTP 404 when ``missing_ok``)."""
        self._register_secrets(params, data)
        last_problem = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            self._check_source_deadline(path, params)
            self.limiter.wait()
            try:
                response = self._send(method, path, params=params, data=data, json=json)
            except httpx.RequestError as exc:  # timeouts, transport, decoding, redirect loops
                last_problem = f"{type(exc).__name__}: {exc}"
                delay = self.retry.backoff(attempt, self.rng)
            except _DeadlineExceeded as exc:
                last_problem = str(exc)
                delay = self.retry.backoff(attempt, self.rng)
            else:
                if response.is_success:
                    return response
                if response.status_code == 404 and missing_ok:
                    return None
                if response.status_code not in RETRYABLE_STATUS:
                    raise SourceError(
                        f"{self.describe(path, params)} failed with HTTP {response.status_code} "
                        f"(not retried: the request itself is wrong). Server said: "
                        f"{quote_body(response) or '(empty body)'}",
                        status=response.status_code,
                    )
                last_problem = f"HTTP {response.status_code}: {quote_body(response)}"
                delay = self.retry.backoff(attempt, self.rng)
                if response.status_code == 429:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    if retry_after is not None:
                        self._check_retry_after(retry_after, path, params)
                        delay = retry_after
            if attempt < self.retry.max_attempts:
                self.sleep(delay)
        raise SourceError(
            f"{self.describe(path, params)} still failing after {self.retry.max_attempts} "
            f"attempts; last problem: {last_problem}. {self._after_failure()}",
            transient=True,
        )

    def _after_failure(self) -> str:
        if self.resumes:
            return "Pages landed so far are kept: the next run resumes from the last landed page."
        return "Nothing of this source is kept from this run; its last good data stays."

    def _register_secrets(self, *mappings: Mapping[str, Any] | None) -> None:
        for mapping in mappings:
            for key, value in (mapping or {}).items():
                if key in self.secret_params:
                    register_secret(value)

    def _check_source_deadline(self, path: str, params: Mapping[str, Any] | None) -> None:
        if self.clock() > self.deadline_at:
            raise SourceError(
                f"{self.describe(path, params)}: {self.source} used up its time budget of "
                f"{self.limits.source_deadline_seconds:,.0f} s (BETACELL_SOURCE_DEADLINE_SECONDS); "
                f"stopped. {self._after_failure()}"
            )

    def _check_retry_after(self, seconds: float, path: str,
                           params: Mapping[str, Any] | None) -> None:
        if seconds > self.limits.max_retry_after_seconds:
            raise SourceError(
                f"{self.describe(path, params)}: the server asked to wait {seconds:,.0f} s "
                f"(Retry-After), more than the {self.limits.max_retry_after_seconds:,.0f} s cap "
                f"(BETACELL_HTTP_MAX_RETRY_AFTER_SECONDS); {self.source} is not retried in this "
                f"run. {self._after_failure()}"
            )

    def _send_within(self, request: httpx.Request, deadline: float) -> httpx.Response:
        """Send and wait for the response headers, but no later than ``deadline``: a server
        trickling its headers never trips a per-read timeout, so the wait runs in a helper
        thread and, past the deadline, the client's connections are closed under it."""
        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                outcome["response"] = self._client.send(request, stream=True)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                outcome["error"] = exc

        worker = threading.Thread(target=send, daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - self.clock()) if self.clock is time.monotonic else None)
        if worker.is_alive():
            self._client.close()  # unblocks the worker's read; a fresh client for what follows
            self._client = httpx.Client(base_url=self._client.base_url, timeout=self._client.timeout,
                                        headers=self._client.headers, transport=self._transport,
                                        follow_redirects=True)
            worker.join(5)
            raise _DeadlineExceeded(
                f"no complete response headers within the "
                f"{self.limits.request_deadline_seconds:,.0f} s deadline "
                "(BETACELL_HTTP_REQUEST_DEADLINE_SECONDS)")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request whose body is read within the request deadline and the size cap."""
        deadline = min(self.clock() + self.limits.request_deadline_seconds, self.deadline_at)
        request = self._client.build_request(method, path, **kwargs)
        response = self._send_within(request, deadline)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.limits.max_response_bytes:
                    raise SourceError(
                        f"{self.describe(path, kwargs.get('params'))}: the response is larger "
                        f"than {self.limits.max_response_bytes:,} bytes once decompressed "
                        "(BETACELL_HTTP_MAX_RESPONSE_BYTES); refused"
                    )
                if self.clock() > deadline:
                    raise _DeadlineExceeded(
                        f"the response took longer than the "
                        f"{self.limits.request_deadline_seconds:,.0f} s deadline "
                        "(BETACELL_HTTP_REQUEST_DEADLINE_SECONDS)"
                    )
        finally:
            response.close()
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in {"content-encoding", "content-length", "transfer-encoding"}]
        return httpx.Response(response.status_code, headers=headers, content=bytes(body),
                              request=request)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *,
                 missing_ok: bool = False) -> Any:
        """GET a JSON body; with ``missing_ok`` an HTTP 404 returns None instead of failing."""
        response = self.request("GET", path, params=params, missing_ok=missing_ok)
        if response is None:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(
                f"{self.describe(path, params)} returned a body that is not JSON: {exc}"
            ) from exc

    def download(self, path: str, dest: Path, params: Mapping[str, Any] | None = None) -> int:
        """Stream a large body to ``dest`` (written aside, then renamed); returns its size.

        A broken transfer is retried from the start under the same policy.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        self._register_secrets(params)
        last_problem = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            self._check_source_deadline(path, params)
            self.limiter.wait()
            try:
                with self._client.stream("GET", path, params=params) as response:
                    if response.status_code in RETRYABLE_STATUS:
                        response.read()
                        last_problem = f"HTTP {response.status_code}: {quote_body(response)}"
                    elif not response.is_success:
                        response.read()
                        raise SourceError(
                            f"{self.describe(path, params)} failed with HTTP "
                            f"{response.status_code}. Server said: {quote_body(response)}"
                        )
                    else:
                        size = self._stream_to(response, partial, path, params)
                        partial.replace(dest)
                        return size
            except httpx.RequestError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.retry.max_attempts:
                self.sleep(self.retry.backoff(attempt, self.rng))
        raise SourceError(
            f"download {self.describe(path, params)} failed after {self.retry.max_attempts} "
            f"attempts; last problem: {last_problem}"
        )

    def _stream_to(self, response: httpx.Response, partial: Path, path: str,
                   params: Mapping[str, Any] | None) -> int:
        size = 0
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    size += len(chunk)
                    if size > self.limits.max_download_bytes:
                        raise SourceError(
                            f"download {self.describe(path, params)} is larger than "
                            f"{self.limits.max_download_bytes:,} bytes once decompressed "
                            "(BETACELL_HTTP_MAX_DOWNLOAD_BYTES); refused"
                        )
                    if self.clock() > self.deadline_at:
                        raise SourceError(
                            f"download {self.describe(path, params)}: {self.source} used up its "
                            f"time budget of {self.limits.source_deadline_seconds:,.0f} s "
                            "(BETACELL_SOURCE_DEADLINE_SECONDS)"
                        )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size
