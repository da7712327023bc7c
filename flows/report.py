"""What a refresh tells people: the run summary (returned, printed and kept as a Prefect
artifact) and alerts (a webhook and ``data/quality/last_failure.json``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from flows import sources, state
from flows.errors import BetacellError
from flows.landing import utc_now
from flows.redaction import mask_exception, redact
from flows.settings import Settings, get_settings
from flows.sources.base import REJECTED_SHEET, Resource, SourceRun


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
    sources: dict[str, SourceRun] = field(default_factory=dict)
    publications_loaded: dict[str, int] = field(default_factory=dict)
    outcome_sheets: list[dict[str, Any]] = field(default_factory=list)
    unresolved_references: list[dict[str, str]] = field(default_factory=list)
    fetched_by_id: dict[str, int] = field(default_factory=dict)
    not_found_by_id: int = 0  # ids a registry was asked for this run and did not know
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
    def stale_sources(self) -> list[SourceRun]:
        return [r for r in self.sources.values() if r.is_stale]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, sources={}))
        out["sources"] = {name: run.as_dict() for name, run in self.sources.items()}
        out["stale_sources"] = [r.source for r in self.stale_sources]
        return out


HEADLINE_SOURCE = "ctgov"  # the summary's headline figures are the critical registry's


def refresh_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.get_name() or flow_run.get_id() or f"{utc_now():%Y%m%dT%H%M%S%fZ}")


def note_landed(summary: RefreshSummary, run: SourceRun) -> SourceRun:
    """What an extract landed, and what it said about it, goes into the log and the summary."""
    logger().info("%s: %s", run.source, run.skipped_reason
                  or f"landed {run.records_landed} records")
    for warning in run.warnings:
        logger().warning(warning)
        summary.warnings.append(warning)
    return run


def add_source(summary: RefreshSummary, resource: Resource, run: SourceRun) -> None:
    """How a loaded source ends, and what the summary says about its odd records. A rejected
    outcome sheet fails its source: its previous version stays in effect (stale)."""
    rejected = [d for d in run.details if d.get("status") in REJECTED_SHEET]
    if rejected:
        run.status, run.records_rejected = "failed", len(rejected)
        run.message = "; ".join(f"{d['sheet']} rejected: {d['message']}" for d in rejected)
        run.alert_key = "rejected sheet content " + ",".join(sorted(
            str(d.get("sheet_sha256") or d["message"]) for d in rejected))
    else:
        run.status = "loaded" if run.run_ids else "skipped"
        run.message = run.skipped_reason
    summary.sources[run.source] = run
    if run.records_superseded:
        summary.warnings.append(
            f"{resource.label}: {run.records_superseded} record version(s) came twice in one "
            "run with other content; the newest is loaded, the other is recorded as "
            "superseded in marts.rejected_records")
    if notes := run.notes:
        summary.warnings.append(
            f"{resource.label}: {len(notes)} {resource.notes_say}: {'; '.join(notes[:5])}"
            + (f"; and {len(notes) - 5} more" if len(notes) > 5 else ""))


def gate_report(gate: str, result: Any) -> dict[str, Any]:
    """A gate's result for the summary; its warnings in the log."""
    for warning in result.warnings:
        logger().warning("%s gate warning: %s", gate, warning)
    return result.as_dict()


def note_published(summary: RefreshSummary, published: Any, warnings: list[str]) -> None:
    """The version now live; what its publish (and digest) warned about."""
    summary.warehouse, summary.published_bytes = str(published.warehouse), published.bytes
    summary.published_version = published.version
    for warning in published.warnings + warnings:
        logger().warning(warning)
        summary.warnings.append(warning)


def note_orphans(stopped: list[str]) -> None:
    for orphan in stopped:
        logger().warning("stopped %s, left running by a killed refresh", orphan)


def finish(settings: Settings, summary: RefreshSummary) -> None:
    """After the publish (or a run with nothing new): the headline figures, the published
    counts and changes, the Prefect artifact, the stale-source alert (at most daily for the same
    news), and an earlier failure's alert settled. The new version is live by now, so nothing
    here may turn the run into a failure: a problem is a warning."""
    try:
        _finish(settings, summary)
    except Exception as exc:  # noqa: BLE001
        warning = (f"published version {summary.published_version}, but the run summary could "
                   f"not be completed: {type(exc).__name__}: {exc}")
        logger().error(warning)
        summary.warnings.append(warning)


def _finish(settings: Settings, summary: RefreshSummary) -> None:
    from prefect.artifacts import create_markdown_artifact

    if headline := summary.sources.get(HEADLINE_SOURCE):
        summary.mode, summary.run_id = headline.mode, (headline.run_ids or [None])[0]
        if not summary.nothing_changed:
            summary.skipped_reason = headline.message if headline.status == "skipped" else None
        summary.pages_landed, summary.resumed_from_page = (headline.pages_landed,
                                                           headline.resumed_from_page)
        summary.records_landed = headline.records_landed
        summary.records_loaded, summary.records_rejected = (headline.records_loaded,
                                                            headline.records_rejected)
        summary.impossible_dates = len(headline.notes)
    summary.outcome_sheets = [d for run in summary.sources.values() for d in run.details]
    summary.publications_loaded = {r.name: summary.sources[r.name].records_loaded
                                   for r in sources.resources()
                                   if r.stage == "publications" and r.name in summary.sources}
    summary.table_counts = state.published_table_counts(settings)
    summary.changes = {} if summary.nothing_changed else state.published_changes(settings)
    create_markdown_artifact(key="refresh-warehouse-summary",
                             markdown=summary_markdown(summary),
                             description="What the last refresh built")
    if alert := stale_sources_alert(summary):
        logger().warning(alert)
        if problem := post_alert_at_most_daily(settings, alert, stale_alert_key(summary)):
            logger().error(problem)
    if problem := settle_failure_record(settings):
        logger().warning(problem)


def alert_on_failure(flow, flow_run, flow_state) -> None:
    """Flow failure hook: the alert webhook, then data/quality/last_failure.json."""
    settings = get_settings()
    message = f"Betacell refresh {flow_run.name} failed: {flow_state.message}"
    source = None
    try:
        flow_state.result()
    except Exception as exc:  # noqa: BLE001 - the failure being reported
        message = f"Betacell refresh {flow_run.name} failed: {mask_exception(exc)}"
        source = getattr(exc, "source", None)
    for problem in alert_failure(settings, flow_run.name, message, source):
        logger().error(problem)


def logger() -> Any:
    from prefect import get_run_logger

    return get_run_logger()


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
                   alert_delivered: bool, source: str | None = None) -> str | None:
    """Write ``last_failure.json`` (best-effort: returns a problem instead of raising, so a
    full or read-only disk never stops the alert). ``source`` names the source that failed the
    run, when one did (``betacell status`` shows the failure on its row)."""
    path = failure_path(settings)
    try:
        undelivered = _undelivered(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(path.name + ".part")
        aside.write_text(json.dumps({"flow_run": flow_run, "at": utc_now().isoformat(),
                                     "source": source, "message": redact(message),
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


def read_failure(settings: Settings) -> dict[str, Any] | None:
    """The failed attempt since the last successful run (``last_failure.json``), if any."""
    try:
        record = json.loads(failure_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def alert_failure(settings: Settings, flow_run: str, message: str,
                  source: str | None = None) -> list[str]:
    """Tell people a run failed: the webhook first, then the file (which records whether the
    webhook got it, so an alert lost to a network outage is sent by the next run)."""
    problems = []
    if problem := post_alert(settings, message):
        problems.append(problem)
    delivered = not problems and bool(settings.alert_webhook_url)
    if problem := record_failure(settings, flow_run, message, delivered, source):
        problems.append(problem)
    return problems


def alert_without_a_run(message: str) -> list[str]:
    """Alert about a failure that came before any run (a configuration error), best effort:
    with the settings when they load, else to ``BETACELL_ALERT_WEBHOOK_URL`` as the environment
    gives it (the settings themselves may be what is wrong)."""
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
