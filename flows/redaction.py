"""Secrets never leave the process: every message a run writes, posts or hands to Prefect goes
through :func:`redact`.

Secret values are registered where they enter (settings with secrets, a client's secret query
parameters). Redaction replaces each registered value, and any ``name=value`` pair whose name
looks like a credential, with ``***`` — so a server that echoes a request back in its error
body cannot leak a key into an error message, a file, an alert or the orchestrator's database.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
_CREDENTIAL_PAIR = re.compile(
    r"(?i)\b(api[_-]?key|apikey|access[_-]?token|token|secret|password|passwd)"
    r"(\s*[=:]\s*|%3D)([^&\s\"'<>,;]+)"
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: Any) -> None:
    """Remember a secret value so it is masked wherever it would appear."""
    if value is None:
        return
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    if len(text) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(text)


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
    return _CREDENTIAL_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)


def redact_data(value: Any) -> Any:
    """Redact every string inside nested dicts/lists (for JSON written to disk or posted)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value
