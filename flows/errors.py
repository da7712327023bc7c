"""Errors a user can act on. The CLI prints their message as one paragraph, without a traceback."""

from __future__ import annotations

from flows.redaction import redact


class BetacellError(RuntimeError):
    """Base class: anything that should stop a run with a clear, actionable message.

    The message is redacted when the error is made, so no secret reaches a log, a file, an
    alert or the orchestrator's state, whoever formats the error later."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(redact(message), *args)


class SourceError(BetacellError):
    """A source answered with something we cannot use (HTTP error, bad archive, bad payload).

    ``transient`` is True when trying again later may help (timeouts, 429, 5xx); ``status`` is
    the HTTP status of a refused request (e.g. 400 for a page token the server no longer takes).
    """

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None,
                 ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class LoadRejected(BetacellError):
    """Too many records of a run were rejected; nothing from the run was loaded."""


class BuildFailed(BetacellError):
    """dbt build (or a later stage) failed; nothing was published."""


class GateFailed(BetacellError):
    """A quality gate found critical problems; nothing was published."""


DISK_FULL_MARKERS = ("No space left on device", "Errno 28", "ENOSPC", "disk is full")


def is_disk_full(error: BaseException | str | None) -> bool:
    """Whether an error (or any error it was raised from) is the disk running full."""
    seen = 0
    while isinstance(error, BaseException) and seen < 10:
        if isinstance(error, DiskFull) or (isinstance(error, OSError) and error.errno == 28):
            return True
        if any(marker in str(error) for marker in DISK_FULL_MARKERS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return isinstance(error, str) and any(marker in error for marker in DISK_FULL_MARKERS)


class DiskFull(BetacellError):
    """The disk holding the data directory is full; nothing was published."""
