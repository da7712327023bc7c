"""WHO ICTRP exports are files a user drops into an inbox (``data/inbox/ictrp/``; the snapshot's
``ictrp/`` folder offline). Only regular files are read, and nothing can block the read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flows.settings import Settings

SUFFIXES = {".xml", ".csv"}


class NotARegularFile(OSError):
    """An inbox entry that is not a regular file (a directory, FIFO, socket, device)."""


FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
              (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((name for test, name in FILE_KINDS if test(mode)), "not a regular file")


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, a regular file (or a symlink to one). ``stat`` comes first, so a
    FIFO is never opened (opening one waits for a writer forever); the file is then opened
    non-blocking and checked again, so nothing swapped in between can block either."""
    mode = os.stat(path).st_mode  # a symlink loop or a dangling link raises here
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"it is {_kind(mode)}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"it is {_kind(mode)}")
        return handle.read()


def read_inbox(inbox: Path, suffixes: set[str] = SUFFIXES
               ) -> tuple[list[tuple[Path, bytes]], list[str]]:
    """The regular files of an inbox with one of ``suffixes``, read; and a warning naming each
    entry that is skipped (not a regular file, a symlink loop, unreadable). One odd entry never
    blocks the others."""
    if not inbox.is_dir():
        return [], []
    files, warnings = [], []
    for path in sorted(inbox.iterdir()):
        if path.suffix.lower() not in suffixes:
            continue
        try:
            files.append((path, read_regular_file(path)))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            warnings.append(f"{path} is skipped: {reason} (only regular files are read)")
    return files, warnings


def inbox(settings: Settings, mode: str) -> Path:
    return settings.snapshot_path / "ictrp" if mode == "snapshot" else (
        settings.data_path / "inbox" / "ictrp")
