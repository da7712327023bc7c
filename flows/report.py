"""What a refresh tells people: the run summary (returned, printed and kept as a Prefect
artifact) and alerts (a webhook and ``data/quality/last_failure.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flows.landing import utc_now
from flows.redaction import redact
from flows.settings import Settings


@dataclass
class SourceReport:
    source: str
    status: str  # loaded | skipped | failed
    records_landed: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    run_ids: list[str] = field(default_factory=list)
    message: str | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)  # e.g. one per outcome sheet
    mode: str = ""
    pages_landed: int = 0
    resumed_from_page: int | None = None
    impossible_dates: int = 0
    alert_key: str | None = None  # what makes this failure the same news as before

    @property
    def is_stale(self) -> bool:
        return self.status == "failed"


@dataclass
class RefreshSummary:
    source: str
    refresh_id: str = ""
    started_at: Any = field(default_factory=utc_now)
    nothing_changed: bool = False
    mode: str = ""
    run_id: str | None = None
    skipped_reason: str | None = None
    pages_landed: int = 0
    records_landed: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    impossible_dates: int = 0  # dates of the right shape naming no real day: NULL, text kept
    resumed_from_page: int | None = None
    sources: dict[str, SourceReport] = field(default_factory=dict)
    publications_loaded: dict[str, int] = field(default_factory=dict)
    outcome_sheets: list[dict[str, Any]] = field(default_factory=list)
    unresolved_references: list[dict[str, str]] = field(default_factory=list)
    fetched_by_id: dict[str, int] = field(default_factory=dict)
    dbt_status_counts: dict[str, int] = field(default_factory=dict)
    table_counts: dict[str, int] = field(default_factory=dict)
    warehouse: str = ""
    published_bytes: int = 0
    published_version: str = ""
    warnings: list[str] = field(default_factory=list)
    gates: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # see flows/quarantine.py

    @property
    def stale_sources(self) -> list[SourceReport]:
        return [r for r in self.sources.values() if r.is_stale]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stale_sources"] = [r.source for r in self.stale_sources]
        return out


def summary_markdown(summary: RefreshSummary) -> str:
    lines = [
        f"# Refresh ({summary.source}, {summary.mode})",
        "",
        f"- ClinicalTrials.gov run: `{summary.run_id or 'none'}`"
        + (f" — {summary.skipped_reason}" if summary.skipped_reason else ""),
        f"- landed: {summary.records_landed} records in {summary.pages_landed} pages",
        f"- loaded: {summary.records_loaded}, rejected: {summary.records_rejected}, "
        f"impossible dates (NULL, text kept): {summary.impossible_dates}",
        f"- published version: `{summary.published_version or 'none'}`",
        *(f"- warning: {w}" for w in summary.warnings),
        "",
        "| source | status | landed | loaded | rejected | note |",
        "|---|---|---:|---:|---:|---|",
        *(f"| {r.source} | {'STALE (failed)' if r.is_stale else r.status} | {r.records_landed} "
          f"| {r.records_loaded} | {r.records_rejected} | {(r.message or '')[:200]} |"
          for r in summary.sources.values()),
        "",
        f"- outcome sheets: {summary.outcome_sheets}",
        f"- fetched by id (referential closure): {summary.fetched_by_id or 'none'}",
        f"- unresolved references: {len(summary.unresolved_references)}"
        + "".join(f"\n  - {u['registry_id']} ({u['registry']}): {u['reason']}"
                  for u in summary.unresolved_references[:20]),
        f"- dbt: {summary.dbt_status_counts}",
        *(f"- {gate} gate: {'passed' if r.get('passed') else 'FAILED'} "
          f"({r.get('expectations', 0)} expectations, {len(r.get('warnings', []))} warnings)"
          for gate, r in summary.gates.items()),
        f"- changes since the last run: {summary.changes or 'none'}",
        f"- quarantined records: {len(summary.quarantined)}"
        + "".join(f"\n  - {q['record_id']} ({q['source']}): {q['check_name']} "
                  f"[{(q.get('offending_values') or '')[:200]}]" for q in summary.quarantined),
        "",
        "| table | rows |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {count} |" for name, count in summary.table_counts.items()]
    return "\n".join(lines)


def post_alert(settings: Settings, text: str) -> str | None:
    """POST ``{"text": ...}`` to the alert webhook; returns a problem description or None."""
    if not settings.alert_webhook_url:
        return None
    try:
        httpx.post(settings.alert_webhook_url, json={"text": redact(text)},
                   timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        return f"alert webhook failed: {type(exc).__name__}"
    return None


def failure_path(settings: Settings) -> Path:
    return settings.quality_dir / "last_failure.json"


def record_failure(settings: Settings, flow_run: str, message: str,
                   alert_delivered: bool) -> str | None:
    """Write ``last_failure.json`` (best-effort: returns a problem instead of raising, so a
    full or read-only disk never stops the alert)."""
    path = failure_path(settings)
    try:
        undelivered = _undelivered(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(path.name + ".part")
        aside.write_text(json.dumps({"flow_run": flow_run, "at": utc_now().isoformat(),
                                     "message": redact(message),
                                     "alert_delivered": alert_delivered,
                                     "undelivered_earlier": undelivered}, indent=2))
        aside.replace(path)
    except OSError as exc:
        return f"could not write {path} ({type(exc).__name__}: {exc})"
    return None


def _undelivered(path: Path) -> list[str]:
    """Messages of earlier failures whose alert never reached the webhook (kept until sent)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    earlier = list(record.get("undelivered_earlier") or [])
    if not record.get("alert_delivered", True) and record.get("message"):
        earlier.append(record["message"])
    return earlier[-20:]


def alert_failure(settings: Settings, flow_run: str, message: str) -> list[str]:
    """Tell people a run failed: the webhook first, then the file (which records whether the
    webhook got it, so an alert lost to a network outage is sent by the next run)."""
    problems = []
    if problem := post_alert(settings, message):
        problems.append(problem)
    delivered = not problems and bool(settings.alert_webhook_url)
    if problem := record_failure(settings, flow_run, message, delivered):
        problems.append(problem)
    return problems


def alert_without_a_run(message: str) -> list[str]:
    """Alert about a failure that came before any run (a configuration error), best effort:
    with the settings when they load, else to ``BETACELL_ALERT_WEBHOOK_URL`` as the environment
    gives it (the settings themselves may be what is wrong)."""
    import os

    from flows.errors import BetacellError
    from flows.settings import get_settings

    try:
        settings = get_settings()
    except BetacellError:
        url = os.environ.get("BETACELL_ALERT_WEBHOOK_URL")
        if not url:
            return []
        try:
            httpx.post(url, json={"text": redact(message)}, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            return [f"alert webhook failed: {type(exc).__name__}"]
        return []
    return alert_failure(settings, "configuration", message)


def settle_failure_record(settings: Settings) -> str | None:
    """After a successful run: deliver a failure alert that never reached the webhook, then
    clear the failure record. Returns a problem when the old alert still cannot be sent."""
    path = failure_path(settings)
    if not path.exists():
        return None
    if settings.alert_webhook_url:
        for message in _undelivered(path):
            late = (f"(delivered late) {message} — the latest run, at "
                    f"{utc_now().isoformat()}, succeeded")
            if problem := post_alert(settings, late):
                return f"an earlier failure alert is still undelivered: {problem}"
    try:
        path.unlink()
    except OSError as exc:
        return f"could not clear {path} ({type(exc).__name__})"
    return None


ALERT_REPEAT_SECONDS = 24 * 3600


def alerts_sent_path(settings: Settings) -> Path:
    return settings.quality_dir / "alerts_sent.json"


def post_alert_at_most_daily(settings: Settings, text: str, key: str) -> str | None:
    """Post ``text`` unless the alert with the same ``key`` was posted less than a day ago
    (a sheet rejected and left in the folder is not news every 15 minutes). Returns a problem
    description or None. Without a writable quality folder it posts every time."""
    import hashlib

    if not settings.alert_webhook_url:
        return None
    path = alerts_sent_path(settings)
    digest = hashlib.sha256(key.encode()).hexdigest()
    try:
        sent = json.loads(path.read_text())
    except (OSError, ValueError):
        sent = {}
    now = utc_now()
    last = sent.get(digest)
    if last and (now - _parse_time(last)).total_seconds() < ALERT_REPEAT_SECONDS:
        return None
    if problem := post_alert(settings, text):
        return problem
    sent = {k: v for k, v in sent.items()
            if (now - _parse_time(v)).total_seconds() < 7 * ALERT_REPEAT_SECONDS}
    sent[digest] = now.isoformat()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(path.name + ".part")
        aside.write_text(json.dumps(sent, indent=2))
        aside.replace(path)
    except OSError:
        pass  # best effort: the next run alerts again
    return None


def _parse_time(text: str) -> Any:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=utc_now().tzinfo)


def stale_alert_key(summary: RefreshSummary) -> str:
    """The identity of a stale-sources alert: which sources, failing for which reason."""
    return " | ".join(f"{r.source}: {r.alert_key or r.message}" for r in summary.stale_sources)


def stale_sources_alert(summary: RefreshSummary) -> str | None:
    stale = summary.stale_sources
    if not stale:
        return None
    listed = "; ".join(f"{r.source}: {r.message}" for r in stale)
    return (f"Betacell refresh published, but {len(stale)} source(s) failed and keep their last "
            f"good data (stale): {listed}")
