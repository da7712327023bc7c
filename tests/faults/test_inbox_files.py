"""The ICTRP inbox reads regular files only; nothing else in it fails or blocks the source.

The probe put a symlink loop and a directory named ``x.xml`` beside a good export: the whole
source failed on every run and the good export never loaded. A FIFO named ``*.xml`` hung the run
while it held the refresh lock. Each entry is ``stat``-ed before it is opened; anything but a
regular file is skipped with a warning naming it."""

from __future__ import annotations

import os
import socket
import threading
from contextlib import suppress

import pytest

from flows.registries import ictrp_inbox, ingest_ictrp

pytestmark = pytest.mark.integration

GOOD = b"""<?xml version="1.0" encoding="UTF-8"?>
<Trials_downloaded_from_ICTRP>
<Trial><TrialID>ISRCTN00000099</TrialID><Public_title>Inbox probe</Public_title>
<Source_Register>ISRCTN</Source_Register></Trial>
</Trials_downloaded_from_ICTRP>
"""


@pytest.fixture
def inbox(settings, monkeypatch):
    folder = ictrp_inbox(settings, "live")
    folder.mkdir(parents=True)
    (folder / "a_good.xml").write_bytes(GOOD)
    return folder


def ingest_within(settings, seconds: float):
    """ingest_ictrp in a thread: a hang fails the test instead of the test run."""
    result: dict = {}

    def work() -> None:
        try:
            result["outcome"] = ingest_ictrp(settings, "live")
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(seconds)
    return worker, result


def test_a_symlink_loop_and_a_directory_named_xml_are_skipped_and_the_good_export_lands(
        settings, inbox):
    (inbox / "loop.xml").symlink_to(inbox / "loop.xml")
    (inbox / "x.xml").mkdir()
    (inbox / "gone.csv").symlink_to(inbox / "missing.csv")
    outcome = ingest_ictrp(settings, "live")
    assert outcome.files == ["a_good.xml"] and outcome.records_landed == 1
    warned = " ".join(outcome.warnings)
    for name in ("loop.xml", "x.xml", "gone.csv"):
        assert f"{inbox / name} is skipped" in warned
    assert "symbolic links" in warned and "a directory" in warned


def test_a_fifo_in_the_inbox_never_hangs_the_run(settings, inbox):
    fifo = inbox / "pipe.xml"
    os.mkfifo(fifo)
    worker, result = ingest_within(settings, 20)
    try:
        assert not worker.is_alive(), "ingest_ictrp hangs on a FIFO"
        outcome = result["outcome"]
        assert outcome.files == ["a_good.xml"]
        assert any(f"{fifo} is skipped: it is a FIFO" in w for w in outcome.warnings)
    finally:
        with suppress(OSError):  # release a reader stuck on the FIFO (the old code's hang)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)


def test_a_socket_and_a_symlink_to_a_good_export_are_told_apart(settings, inbox, tmp_path):
    outside = tmp_path / "downloads" / "export.xml"
    outside.parent.mkdir()
    outside.write_bytes(GOOD.replace(b"ISRCTN00000099", b"ISRCTN00000098"))
    (inbox / "linked.xml").symlink_to(outside)
    server = socket.socket(socket.AF_UNIX)
    short = tmp_path / "s"
    server.bind(str(short))  # AF_UNIX paths are short: bind there, link the inbox name to it
    try:
        (inbox / "sock.csv").symlink_to(short)
        outcome = ingest_ictrp(settings, "live")
    finally:
        server.close()
    assert sorted(outcome.files) == ["a_good.xml", "linked.xml"]
    assert any("sock.csv is skipped: it is a socket" in w for w in outcome.warnings)


def test_read_regular_file_refuses_what_is_not_one(tmp_path):
    from flows.registries import read_regular_file

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(OSError, match="it is a"):
            read_regular_file(tmp_path / name)
    (tmp_path / "ok").write_bytes(b"x")
    assert read_regular_file(tmp_path / "ok") == b"x"
