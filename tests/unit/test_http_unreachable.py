"""A host that cannot be reached is retried briefly, with a progress line per wait, then fails
its source at once; a host that answers 429 or 5xx keeps its backoff. Real sockets: a closed
port on 127.0.0.1 (refused) and a name under ``.invalid`` (never resolves, RFC 6761); the
sleeps are recorded, not waited."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from flows import progress
from flows.errors import SourceError
from flows.settings import Settings
from flows.sources.http import Limits, PoliteClient, RetryPolicy

UNRESOLVABLE = "http://registry.betacell.invalid/api/v2"


def closed_port_url() -> str:
    with socket.socket() as sock:  # bound, never listening: the port refuses, then is free
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api/v2"


class Lines:
    """A progress reporter that keeps the lines it is shown."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, stage, total=None) -> None: ...
    def advance(self, stage, amount=1, total=None) -> None: ...
    def finish(self, stage) -> None: ...

    def note(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def shown():
    lines = Lines()
    progress.set_reporter(lines)
    yield lines.lines
    progress.set_reporter(None)


class Clock:
    """A clock the recorded sleeps advance (and ``per_call`` seconds each connection attempt,
    for a resolver that times out slowly)."""

    def __init__(self, sleeps: list[float]) -> None:
        self.now, self.sleeps = 0.0, sleeps

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(url: str, sleeps: list[float], **kwargs) -> PoliteClient:
    clock = Clock(sleeps)
    return PoliteClient(url, source="ctgov", requests_per_second=float("inf"), sleep=clock.sleep,
                        clock=clock, limits=Limits.from_settings(Settings(data_dir=Path("u"))),
                        **kwargs)


def refused() -> tuple[str, str]:
    url = closed_port_url()
    return url, f"the connection to {httpx.URL(url).host}:{httpx.URL(url).port} was refused"


def unresolvable() -> tuple[str, str]:
    return UNRESOLVABLE, "the name registry.betacell.invalid does not resolve"


# The closed port is found when the test runs: xdist workers must collect the same test ids.
@pytest.mark.parametrize("unreachable", [refused, unresolvable], ids=["refused", "unresolvable"])
def test_an_unreachable_host_is_retried_briefly_then_fails_its_source(unreachable, shown):
    url, reason = unreachable()
    sleeps: list[float] = []
    with client(url, sleeps, resumes=True) as api, pytest.raises(SourceError) as failed:
        api.get_json("/version")
    assert sleeps == [5.0, 20.0, 30.0] and sum(sleeps) <= 60  # not 6 attempts x 2..120 s
    assert [line.split(" (")[0] for line in shown] == [
        "ClinicalTrials.gov unreachable, retry 1/3 in 5 s",
        "ClinicalTrials.gov unreachable, retry 2/3 in 20 s",
        "ClinicalTrials.gov unreachable, retry 3/3 in 30 s"]
    assert all(f"({reason}" in line for line in shown)
    error = failed.value
    assert not error.transient  # the flow does not retry it for minutes
    assert error.unreachable and error.source == "ctgov"
    assert str(error).startswith(f"ClinicalTrials.gov is unreachable: {reason}")
    assert "tried 4 times over 55 s" in str(error)
    assert "resumes" not in str(error)  # nothing landed, so nothing resumes


def test_the_waits_are_for_the_whole_source_not_per_request(shown):
    sleeps: list[float] = []
    with client(closed_port_url(), sleeps) as api:
        with pytest.raises(SourceError):
            api.get_json("/version")
        with pytest.raises(SourceError, match="unreachable"):
            api.get_json("/studies")  # its waits are spent: fails at once
    assert sleeps == [5.0, 20.0, 30.0]


def test_slow_failures_count_against_the_minute(shown):
    """A resolver that takes 10 s to fail: the waits stop before the source has spent 60 s."""
    sleeps: list[float] = []
    clock = Clock(sleeps)

    def slow_resolver(request):
        clock.now += 10
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    api = PoliteClient("http://registry.slow-resolver.invalid/v2", source="ctgov", requests_per_second=float("inf"),
                       transport=httpx.MockTransport(slow_resolver), clock=clock,
                       sleep=clock.sleep)
    with pytest.raises(SourceError, match=r"tried 3 times over 45 s") as failed:
        api.get_json("/version")
    assert sleeps == [5.0, 20.0] and clock.now == 55  # a third wait (30 s) would pass 60 s
    assert "the name registry.slow-resolver.invalid does not resolve" in str(failed.value)


def test_a_host_that_comes_back_is_used_and_429_5xx_keep_their_backoff(shown):
    """Refused once, then 503, 429 with Retry-After, then 200: one short unreachable wait,
    then the ordinary backoff and Retry-After (the attempts count only answered requests)."""
    answers = iter([httpx.ConnectError("[Errno 111] Connection refused"),
                    httpx.Response(503, text="busy"),
                    httpx.Response(429, headers={"Retry-After": "7"}, text="slow"),
                    httpx.Response(200, json={"ok": True})])

    def handler(request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    sleeps: list[float] = []
    api = PoliteClient("http://api.test/v2", source="pubmed", requests_per_second=1e9,
                       transport=httpx.MockTransport(handler), sleep=sleeps.append,
                       rng=lambda: 0.5, retry=RetryPolicy(3, 2.0, 60.0))
    assert api.get_json("/x") == {"ok": True}
    assert sleeps == [5.0, 2.0, 7.0]
    assert shown == ["PubMed unreachable, retry 1/3 in 5 s (the connection to api.test:http "
                     "was refused)"]


def test_without_a_watcher_the_waits_are_logged(caplog):
    sleeps: list[float] = []
    with client(closed_port_url(), sleeps) as api, pytest.raises(SourceError):
        api.get_json("/version")
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.levelname == "WARNING"] \
        == ["ClinicalTrials.gov unreachable, retry 1/3 in 5 s",
            "ClinicalTrials.gov unreachable, retry 2/3 in 20 s",
            "ClinicalTrials.gov unreachable, retry 3/3 in 30 s"]


@pytest.mark.parametrize("waits", ["30,31", "-1", "[20, 20, 20, 5]"])
def test_the_unreachable_waits_add_up_to_a_minute_at_most(waits, monkeypatch):
    from flows.errors import BetacellError
    from flows.settings import get_settings, reset_settings_cache

    monkeypatch.setenv("BETACELL_HTTP_UNREACHABLE_RETRY_DELAYS_SECONDS", waits)
    reset_settings_cache()
    try:
        with pytest.raises(BetacellError, match="60 s at most"):
            get_settings()
    finally:
        reset_settings_cache()
