"""Secrets never leave the process: every message a run writes, posts or hands to Prefect goes
through :func:`redact`.

Secret values are registered where they enter (settings with secrets, including the password
inside a connection string in either of its forms, and a client's secret query parameters).
Redaction replaces each registered value (as written and URL-encoded), any ``name=value`` pair
whose name looks like a credential and the password of any ``scheme://user:password@`` URI with
``***`` — so a server or a driver that echoes a request back cannot leak a key into an error
message, a chained exception, a log line, a file, an alert or the orchestrator's database.
Landed raw bodies are scanned for registered values before they are written (:func:`mask_secrets`).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import quote, unquote

F = TypeVar("F", bound=Callable[..., Any])

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
# In landed data a short secret is an ordinary word ("test" in "Gastrointestinal"): masking it
# would change the records. What a server echoes back is a key we sent, and keys are long.
MIN_LANDED_SECRET_LENGTH = 16
_CREDENTIAL_PAIR = re.compile(
    r"(?i)\b(api[_-]?key|apikey|access[_-]?token|token|secret|password|passwd)"
    r"(\s*[=:]\s*|%3D)([^&\s\"'<>,;]+)"
)

# scheme://user:password@host: the password of a libpq (or any) URI
_URI_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@'\"]*:)([^\s@/'\"]+)(@)")
# password=value in a libpq key/value connection string, the value possibly quoted
_CONNINFO_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:\\.|[^'])*'|[^\s'&]+)")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: Any) -> None:
    """Remember a secret value so it is masked wherever it would appear (as written and in
    its URL-encoded form, which is how it appears in an echoed URL)."""
    if value is None:
        return
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    if len(text) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.update({text, quote(text, safe=""), quote(text)})


def connection_string_passwords(text: str | None) -> list[str]:
    """The passwords inside a connection string, in libpq URI form
    (``postgresql://user:pw@host/db``, also after a prefix such as ``postgres:``) and in
    key/value form (``password=pw`` or ``password='p w'``)."""
    if not text:
        return []
    found = [unquote(m.group(2)) for m in _URI_PASSWORD.finditer(text)]
    for match in _CONNINFO_PASSWORD.finditer(text):
        value = match.group(1)
        if value.startswith("'"):
            found.append(value[1:-1])  # as written, escapes included
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found.append(unquote(value) if "%" in value else value)
    return found


def register_connection_string(text: str | None) -> None:
    """Register the whole connection string's passwords (both forms) as secrets."""
    for password in connection_string_passwords(text):
        register_secret(password)


def redact(text: Any) -> str:
    """``text`` with every registered secret and every credential-like ``name=value`` masked."""
    if text is None:
        return ""
    out = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in out:
            out = out.replace(secret, MASK)
    out = _URI_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", out)
    out = _CONNINFO_PASSWORD.sub(lambda m: m.group(0).replace(m.group(1), MASK), out)
    return _CREDENTIAL_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)


def mask_secrets(data: bytes) -> bytes:
    """``data`` with every registered secret value replaced by ``***``: a body landed as a raw
    file never keeps a key a server echoed back, even in a successful reply. Only registered
    values are masked (a ``token=`` in a trial's text is data, not a credential), and only
    values of at least ``MIN_LANDED_SECRET_LENGTH`` characters."""
    with _lock:
        secrets = sorted((s for s in _secrets if len(s) >= MIN_LANDED_SECRET_LENGTH),
                         key=len, reverse=True)
    for secret in secrets:
        encoded = secret.encode()
        if encoded in data:
            data = data.replace(encoded, MASK.encode())
    return data


def mask_exception(exc: BaseException) -> BaseException:
    """Mask secrets in ``exc`` and every exception it was raised from, in place (their
    arguments, which is what their text is made of, and their notes): whoever prints the chain
    later — a traceback, Prefect's state message, a log handler — finds no secret. Returns
    ``exc``, for ``raise ... from mask_exception(exc)``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        with suppress(AttributeError, TypeError):  # an exception type with read-only arguments
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        if notes := getattr(current, "__notes__", None):
            current.__notes__ = [redact(note) for note in notes]
        for name in ("msg", "strerror", "filename", "stderr", "stdout", "output"):
            value = getattr(current, name, None)
            if isinstance(value, str) and redact(value) != value:
                with suppress(AttributeError, TypeError):
                    setattr(current, name, redact(value))
        current = current.__cause__ or current.__context__
    return exc


def masking_secrets(function: F) -> F:
    """Decorate a task: an exception leaving it has its secrets masked first (see
    :func:`mask_exception`), so the orchestrator never records one. (Not for a flow: Prefect
    validates a flow's parameters against its signature, resolved in this module.)"""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            mask_exception(exc)
            raise

    return wrapper  # type: ignore[return-value]


def format_exception(exc: BaseException) -> str:
    """The full traceback, chained exceptions included, redacted (for ``--debug``)."""
    return redact("".join(traceback.format_exception(exc)))


def exception_chain_text(exc: BaseException) -> str:
    """``exc`` and the exceptions it was raised from, one per line, redacted."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return redact("\n  caused by ".join(parts))


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record's message and traceback (chained exceptions included)
    before any handler formats it: Prefect's console, its API log handler, a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logged as it is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler configured so far (the root logger's and
    Prefect's), so no log line anywhere carries a registered secret."""
    loggers = [logging.getLogger()] + [logger for logger in
                                       logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def redact_data(value: Any) -> Any:
    """Redact every string inside nested dicts/lists (for JSON written to disk or posted)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value
