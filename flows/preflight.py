"""Configuration checked before anything starts: the topic file, the data directory and the
chosen source's inputs. Each problem is one clear paragraph (a :class:`BetacellError`), raised
before a Prefect server, a download or a build begins."""

from __future__ import annotations

import os
import tempfile

from flows import sources
from flows.errors import BetacellError
from flows.settings import Settings
from flows.sources.topic import Topic, load_topic

SOURCES = ("snapshot", "live")


def check_configuration(settings: Settings, source: str) -> Topic:
    if source not in SOURCES:
        raise BetacellError(f"unknown source {source!r}: use 'snapshot' or 'live'")
    topic = load_topic(settings.topic_file)
    if unknown := sorted(set(settings.critical_sources) - set(sources.names())):
        raise BetacellError(f"BETACELL_CRITICAL_SOURCES names unknown source(s) {unknown}; "
                            f"choose among {', '.join(sources.names())}")
    _check_writable(settings)
    if source == "snapshot" and not settings.snapshot_path.is_dir():
        raise BetacellError(
            f"the snapshot directory {settings.snapshot_path} does not exist "
            "(BETACELL_SNAPSHOT_DIR); use the shipped data/snapshot or --source live"
        )
    return topic


def _check_writable(settings: Settings) -> None:
    path = settings.data_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise BetacellError(
            f"the data directory {path} is not writable (BETACELL_DATA_DIR): "
            f"{exc.strerror or exc}"
        ) from None
