"""Progress reporting hook: the CLI installs a rich progress display, everything else is silent."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def start(self, stage: str, total: int | None = None) -> None: ...
    def advance(self, stage: str, amount: int = 1, total: int | None = None) -> None: ...
    def finish(self, stage: str) -> None: ...


class _Silent:
    def start(self, stage: str, total: int | None = None) -> None:
        pass

    def advance(self, stage: str, amount: int = 1, total: int | None = None) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass


_reporter: Reporter = _Silent()


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter or _Silent()


def reporter() -> Reporter:
    return _reporter
