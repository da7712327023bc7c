"""Progress reporting hook: the CLI installs a rich progress display, everything else is silent
(a ``note`` nobody is shown is logged by whoever sends it, so scheduled runs keep it)."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def start(self, stage: str, total: int | None = None) -> None: ...
    def advance(self, stage: str, amount: int = 1, total: int | None = None) -> None: ...
    def finish(self, stage: str) -> None: ...
    def note(self, line: str) -> None: ...


class _Silent:
    def start(self, stage: str, total: int | None = None) -> None:
        pass

    def advance(self, stage: str, amount: int = 1, total: int | None = None) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass

    def note(self, line: str) -> None:
        pass


_reporter: Reporter = _Silent()


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter or _Silent()


def reporter() -> Reporter:
    return _reporter


def note(line: str) -> bool:
    """One line for the person watching (e.g. a source being waited for); False when nobody
    watches (then the caller logs it)."""
    if isinstance(_reporter, _Silent) or not hasattr(_reporter, "note"):
        return False
    _reporter.note(line)
    return True
