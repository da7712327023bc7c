"""Backoff, rate limit and error handling of the shared HTTP client (fake clock, no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from flows.errors import SourceError
from flows.sources.http import PoliteClient, RateLimiter, RetryPolicy, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(handler, clock: FakeClock, **kwargs) -> PoliteClient:
    return PoliteClient(
        "http://api.test/v2",
        source="test",
        transport=httpx.MockTransport(handler),
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 0.5,  # jitter factor 1.0: deterministic schedule
        **kwargs,
    )


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(max_attempts=8, initial_seconds=1.0, max_seconds=10.0)
    assert [policy.backoff(n, lambda: 0.5) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert policy.backoff(3, lambda: 0.0) == 2.0  # jitter spans [0.5, 1.5) of the base
    assert policy.backoff(3, lambda: 0.999) == pytest.approx(5.996)


def test_rate_limiter_spaces_request_starts():
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        limiter.wait()
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_retries_5xx_then_succeeds_with_backoff():
    clock = FakeClock()
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler, clock, retry=RetryPolicy(5, 1.0, 60.0), requests_per_second=1e9)
    assert client.get_json("/x") == {"ok": True}
    assert len(calls) == 3
    assert [s for s in clock.sleeps if s > 0.01] == [1.0, 2.0]


def test_429_honours_retry_after_seconds():
    clock = FakeClock()
    responses = [
        httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
        httpx.Response(200, json={}),
    ]
    client = make_client(lambda r: responses.pop(0), clock, requests_per_second=1e9)
    client.get_json("/x")
    assert 7.0 in clock.sleeps


def test_timeouts_are_retried():
    clock = FakeClock()
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"ok": 1})

    client = make_client(handler, clock, requests_per_second=1e9)
    assert client.get_json("/x") == {"ok": 1}


def test_other_4xx_fails_at_once_quoting_the_server():
    clock = FakeClock()
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(400, text="`filter.phase` is unknown parameter")

    client = make_client(handler, clock)
    with pytest.raises(SourceError, match="HTTP 400.*`filter.phase` is unknown parameter"):
        client.get_json("/studies", {"filter.phase": "PHASE1"})
    assert len(calls) == 1


def test_gives_up_after_budget_with_clear_message():
    clock = FakeClock()
    client = make_client(
        lambda r: httpx.Response(500, text="internal error"),
        clock,
        retry=RetryPolicy(3, 1.0, 60.0),
    )
    with pytest.raises(SourceError, match="still failing after 3 attempts.*HTTP 500"):
        client.get_json("/studies")


def test_secret_parameters_are_redacted_in_errors():
    clock = FakeClock()
    client = make_client(
        lambda r: httpx.Response(403, text="forbidden"), clock, secret_params=["api_key"]
    )
    with pytest.raises(SourceError) as caught:
        client.get_json("/esearch.fcgi", {"api_key": "s3cr3t", "db": "pubmed"})
    assert "s3cr3t" not in str(caught.value)
    assert "api_key=***" in str(caught.value)


def test_parse_retry_after_http_date():
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
