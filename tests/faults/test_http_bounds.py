"""Hostile servers cannot hang a run or exhaust its memory: every request has a total deadline,
Retry-After has a cap, a repeated page token stops paging, and a decompressed body has a size
limit. Each failure names the source. Servers here are real sockets on 127.0.0.1."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import httpx
import pytest

from flows.errors import SourceError
from flows.sources import ctgov, ctis, europepmc
from flows.sources.http import Limits, PoliteClient, RetryPolicy

pytestmark = pytest.mark.integration


@contextmanager
def raw_server(respond) -> Iterator[str]:
    """A one-connection-at-a-time TCP server whose handler writes raw bytes to the socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, suppress(OSError):
                conn.recv(65536)
                respond(conn, stop)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def client(base: str, **limits) -> PoliteClient:
    return PoliteClient(base, source="probe", requests_per_second=1000, timeout=10.0,
                        retry=RetryPolicy(max_attempts=1), limits=Limits(**limits))


def test_a_server_trickling_one_byte_at_a_time_hits_the_request_deadline():
    def trickle(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b" ")
            time.sleep(0.3)  # well inside the 10 s read timeout: only a total deadline stops it

    with raw_server(trickle) as base:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"probe .*longer than the 2 s deadline"):
            client(base, request_deadline_seconds=2.0).get_json("/studies")
    assert time.monotonic() - started < 8


def test_a_gzip_bomb_is_refused_at_the_size_limit_naming_the_source():
    bomb = gzip.compress(b"[" + b"0," * (32 * 1024**2) + b"0]", compresslevel=9)
    assert len(bomb) < 200_000  # 64 MiB once decompressed

    def serve_bomb(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: "
                     b"gzip\r\nContent-Length: " + str(len(bomb)).encode() + b"\r\n\r\n" + bomb)

    with raw_server(serve_bomb) as base, pytest.raises(
            SourceError, match=r"probe /efetch.*larger than 8,388,608 bytes once decompressed"):
        client(base, max_response_bytes=8 * 1024**2).get_json("/efetch")


def test_a_gzip_bomb_download_is_refused_and_leaves_no_partial_file(tmp_path):
    bomb = gzip.compress(b"\0" * (64 * 1024**2), compresslevel=9)

    def serve_bomb(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
                     + str(len(bomb)).encode() + b"\r\n\r\n" + bomb)

    dest = tmp_path / "json.zip"
    with raw_server(serve_bomb) as base, pytest.raises(SourceError, match="larger than"):
        client(base, max_download_bytes=4 * 1024**2).download("/studies/download", dest)
    assert list(tmp_path.iterdir()) == []


def mock_client(handler, **limits) -> PoliteClient:
    slept: list[float] = []
    made = PoliteClient("http://api.test", source="probe", requests_per_second=1000,
                        retry=RetryPolicy(max_attempts=3, initial_seconds=0),
                        transport=httpx.MockTransport(handler), sleep=slept.append,
                        limits=Limits(**limits))
    made.slept = slept
    return made


def test_a_day_long_retry_after_fails_the_source_instead_of_sleeping():
    probe = mock_client(lambda r: httpx.Response(429, headers={"Retry-After": "86400"}),
                        max_retry_after_seconds=600)
    with pytest.raises(SourceError, match=r"wait 86,400 s \(Retry-After\).*600 s cap") as err:
        probe.get_json("/studies")
    assert probe.slept == []
    assert not err.value.transient  # the task is not retried into the same wait


def test_a_reasonable_retry_after_is_still_honoured():
    answers = iter([httpx.Response(429, headers={"Retry-After": "30"}),
                    httpx.Response(200, json={"ok": True})])
    probe = mock_client(lambda r: next(answers), max_retry_after_seconds=600)
    assert probe.get_json("/studies") == {"ok": True}
    assert probe.slept[0] == 30.0 and max(probe.slept) == 30.0


def test_a_source_stops_when_its_time_budget_is_used_up():
    clock = iter([0.0, 0.0, 50.0, 50.0, 50.0, 101.0, 101.0, 101.0])
    probe = PoliteClient("http://api.test", source="probe", requests_per_second=1000,
                         transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})),
                         clock=lambda: next(clock), limits=Limits(source_deadline_seconds=100))
    probe.get_json("/a")
    with pytest.raises(SourceError, match=r"probe used up its time budget of 100 s"):
        probe.get_json("/b")


def test_a_repeated_ctgov_page_token_stops_paging():
    numbers = iter(range(10**6))

    def handler(request):  # new records on every page, but always the same token
        return httpx.Response(200, json={"studies": [{"protocolSection": {
            "identificationModule": {"nctId": f"NCT{next(numbers):08d}"}}}],
            "nextPageToken": "SAME"})

    pages = ctgov.iter_study_pages(mock_client(handler), {"query.cond": "diabetes"})
    with pytest.raises(SourceError, match=r"nextPageToken 'SAME', a token it already gave"):
        for _ in range(50):
            next(pages)


def test_a_cycling_europepmc_cursor_stops_paging():
    cursors = iter(["A", "B", "A", "B"] * 10)

    def handler(request):
        return httpx.Response(200, json={"resultList": {"result": [{"id": "1"}]},
                                         "nextCursorMark": next(cursors)})

    with pytest.raises(SourceError, match="cursorMark 'A' again"):
        list(europepmc.iter_search_pages(mock_client(handler), "diabetes"))


def test_a_ctis_page_repeated_forever_stops_paging():
    def handler(request):
        return httpx.Response(200, json={"data": [{"ctNumber": "2023-500001-01-00"}],
                                         "pagination": {"totalRecords": 10**9}})

    with pytest.raises(SourceError, match="page 2 repeats an earlier page"):
        list(ctis.iter_search_pages(mock_client(handler), {}))


def test_pages_cycling_between_two_or_fresh_tokens_on_the_same_records_stop():
    pages = iter([[{"ctNumber": "A"}], [{"ctNumber": "B"}]] * 50)

    def ctis_cycle(request):
        return httpx.Response(200, json={"data": next(pages),
                                         "pagination": {"totalRecords": 10**9}})

    with pytest.raises(SourceError, match="page 3 repeats an earlier page"):
        list(ctis.iter_search_pages(mock_client(ctis_cycle), {}))

    tokens = iter(range(10**6))

    def fresh_tokens_new_records(request):
        n = next(tokens)
        body = {"studies": [{"protocolSection": {"identificationModule": {
            "nctId": f"NCT{n:08d}"}}}], "nextPageToken": f"T{n}"}
        if request.url.params.get("countTotal") == "true":
            body["totalCount"] = 1
        return httpx.Response(200, json=body)

    with pytest.raises(SourceError, match=r"page 3 is beyond the 1 page\(s\) its totalCount of 1 allows"):
        list(ctgov.iter_study_pages(mock_client(fresh_tokens_new_records), {"pageSize": "1000"}))


def test_failure_messages_promise_a_resume_only_for_sources_that_resume():
    down = lambda r: httpx.Response(503)  # noqa: E731
    with pytest.raises(SourceError) as plain:
        mock_client(down).get_json("/search")
    assert "resumes" not in str(plain.value) and "last good data stays" in str(plain.value)
    resuming = mock_client(down)
    resuming.resumes = True
    with pytest.raises(SourceError, match="next run resumes from the last landed page"):
        resuming.get_json("/studies")


def test_a_server_trickling_its_headers_hits_the_request_deadline():
    def trickle_headers(conn, stop):
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.3)

    with raw_server(trickle_headers) as base:
        started = time.monotonic()
        with pytest.raises(SourceError, match="no complete response headers within the 2 s"):
            client(base, request_deadline_seconds=2.0).get_json("/studies")
    assert time.monotonic() - started < 10


def test_a_retry_after_date_without_a_zone_is_read_as_utc():
    from datetime import UTC, datetime

    from flows.sources.http import parse_retry_after

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 01 Dec 2026 12:01:00 -0000", now) == 60.0
    probe = mock_client(lambda r: httpx.Response(
        429, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 -0000"}))
    with pytest.raises(SourceError, match=r"the server asked to wait .* s \(Retry-After\)"):
        probe.get_json("/studies")


def test_a_corrupt_compressed_reply_is_retried_and_named():
    def corrupt(request):
        return httpx.Response(200, headers={"Content-Encoding": "gzip"},
                              stream=httpx.ByteStream(b"not gzip at all"))

    answers = iter([corrupt, lambda r: httpx.Response(200, json={"ok": True})])
    assert mock_client(lambda r: next(answers)(r)).get_json("/studies") == {"ok": True}
    with pytest.raises(SourceError, match=r"probe /studies still failing .*DecodingError"):
        mock_client(corrupt).get_json("/studies")
