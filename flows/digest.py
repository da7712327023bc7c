"""Living evidence: what moved since the previously published version, told to people.

Two steps, one on each side of the build:

1. :func:`snapshot_previous_version`, before dbt: the build database is a copy of the published
   warehouse, so its ``marts`` are still the previous version's. Their comparison rows and
   trials are copied into ``raw.previous_version*``; ``marts.evidence_changes`` compares the
   new marts with them. (No second file is opened and no path reaches dbt; the published
   warehouse keeps a record of what it was compared with.)
2. :func:`publish_digest`, after the switch: the new version's folder gets ``prisma_flow.svg``
   (always), and, when something moved (or this is the first version), ``digest.md`` and
   ``feed.atom`` (an Atom feed that accumulates the entries of earlier versions); the digest is
   posted to the alert webhook as a ``digest`` event, apart from failure alerts. Nothing here
   may fail a run whose version is already live: problems come back as warnings.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx

from flows.prisma import prisma_svg, read_flow
from flows.redaction import redact
from flows.settings import Settings

ATOM = "http://www.w3.org/2005/Atom"
FEED_ID = "urn:betacell:living-evidence"
FEED_ENTRIES_KEPT = 100
WEBHOOK_TEXT_LIMIT = 30_000
DIGEST_FILE, FEED_FILE, PRISMA_FILE = "digest.md", "feed.atom", "prisma_flow.svg"

COMPARISON_COLUMNS = {  # raw.previous_version_comparisons column -> its type
    "comparison_id": "varchar", "therapy_label": "varchar", "outcome": "varchar",
    "definition_label": "varchar", "window_label": "varchar", "diabetes_type": "varchar",
    "is_headline": "boolean", "k_cohorts": "integer", "n_participants": "integer",
    "n_events": "integer", "estimate": "double", "ci_low": "double", "ci_high": "double",
    "certainty": "varchar", "outcome_fact_ids": "varchar[]",
}


# 1. Before the build ----------------------------------------------------------------------------

def snapshot_previous_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """Copy the published version's comparison rows and trials (still in the build copy's
    marts) into ``raw.previous_version*``; returns its version id (None before the first
    publish). Columns a version published before they existed are copied as NULL."""
    from flows.db import ensure_raw_schema

    ensure_raw_schema(con)
    comparisons = _columns(con, "marts", "therapy_outcome_comparison")
    con.execute("begin transaction")
    try:
        for table in ("previous_version", "previous_version_comparisons",
                      "previous_version_trials"):
            con.execute(f"delete from raw.{table}")
        version = None
        if comparisons:
            version = _published_version(con)
            con.execute("insert into raw.previous_version values (?, ?, now())", version)
            selected = ", ".join(
                name if name in comparisons else f"cast(null as {kind}) as {name}"
                for name, kind in COMPARISON_COLUMNS.items())
            con.execute(f"insert into raw.previous_version_comparisons "
                        f"select {selected} from marts.therapy_outcome_comparison")
            _copy_previous_trials(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return version[0] if version else None


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ?", [schema, table]).fetchall()}


def _published_version(con: duckdb.DuckDBPyConnection) -> list[Any]:
    if _columns(con, "meta", "published_version"):
        row = con.execute("select version_id, published_at from meta.published_version "
                          "limit 1").fetchone()
        if row:
            return list(row)
    return ["unversioned", None]


def _copy_previous_trials(con: duckdb.DuckDBPyConnection) -> None:
    if not _columns(con, "marts", "dim_trials"):
        return
    overdue = ("reporting.is_overdue_12_months" if "is_overdue_12_months" in _columns(
        con, "marts", "results_reporting") else "cast(null as boolean)")
    joined = ("left join marts.results_reporting reporting using (trial_id)"
              if overdue != "cast(null as boolean)" else "")
    con.execute(f"""insert into raw.previous_version_trials
        select trials.trial_id, trials.brief_title, trials.therapy_class, trials.overall_status,
               trials.has_results, {overdue}
        from marts.dim_trials trials {joined}""")


# 2. After the switch ----------------------------------------------------------------------------

@dataclass
class Digest:
    version: str
    published_at: datetime
    previous_version: str | None
    changes: list[dict[str, Any]] = field(default_factory=list)
    comparison_rows: int = 0
    headline_rows: int = 0
    trials: int = 0

    @property
    def is_baseline(self) -> bool:
        return self.previous_version is None

    @property
    def title(self) -> str:
        if self.is_baseline:
            return f"Betacell {self.version}: first published version (baseline)"
        moved = sum(c["entity_type"] == "comparison" for c in self.changes)
        trials = len(self.changes) - moved
        return (f"Betacell {self.version}: {moved} comparison row(s) and {trials} trial(s) "
                f"changed since {self.previous_version}")


def publish_digest(settings: Settings, version: str) -> list[str]:
    """After ``version`` went live: write its PRISMA diagram, and its digest and feed when
    something moved (or it is the first version), and post the digest to the webhook.
    Returns warnings; never raises."""
    folder = settings.data_path / "published" / version
    warehouse = folder / "warehouse.duckdb"
    warnings: list[str] = []
    try:
        _write(folder / PRISMA_FILE, prisma_svg(read_flow(warehouse),
                                                f"PRISMA 2020 flow · Betacell {version}"))
    except Exception as exc:  # noqa: BLE001 - the version is live: report, do not fail
        warnings.append(f"published version {version}, but its PRISMA diagram could not be "
                        f"drawn ({type(exc).__name__}: {exc})")
    try:
        digest = read_digest(warehouse, version)
        if digest is None:
            return warnings
        markdown = digest_markdown(digest)
        _write(folder / DIGEST_FILE, markdown)
        previous_feed = (settings.data_path / "published" / digest.previous_version / FEED_FILE
                         if digest.previous_version else None)
        _write(folder / FEED_FILE, atom_feed(digest, markdown, previous_feed))
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"published version {version}, but its digest could not be written "
                        f"({type(exc).__name__}: {exc})")
        return warnings
    if problem := post_digest(settings, digest, markdown):
        warnings.append(problem)
    return warnings


def read_digest(warehouse: Path, version: str) -> Digest | None:
    """What the digest of ``version`` says; None when nothing moved since the previous one."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        previous = con.execute("select version_id from raw.previous_version").fetchone()
        published_at = con.execute("select published_at from meta.published_version").fetchone()
        frame = con.execute("select * from marts.evidence_changes order by entity_type, "
                            "is_headline desc nulls last, change_type, entity_id").fetchdf()
        counts = con.execute("select count(*), count(*) filter (where is_headline) "
                             "from marts.therapy_outcome_comparison").fetchone()
        trials = con.execute("select count(*) from marts.dim_trials").fetchone()[0]
    finally:
        con.close()
    changes = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    if previous and not changes:
        return None
    return Digest(version, _utc(published_at[0] if published_at else None),
                  previous[0] if previous else None, changes, counts[0], counts[1], trials)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    try:
        return None if value != value else value  # NaN
    except (TypeError, ValueError):
        return value


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


CHANGE_HEADINGS = {
    "comparison_new": "New comparison rows", "comparison_moved": "Estimates that moved",
    "comparison_removed": "Comparison rows removed", "trial_new": "New trials",
    "trial_status_changed": "Trials whose status changed",
    "trial_results_posted": "Trials that posted results",
    "trial_became_overdue": "Trials that became overdue",
}


def digest_markdown(digest: Digest) -> str:
    lines = [f"# {digest.title}", "",
             f"Published {digest.published_at:%Y-%m-%d %H:%M} UTC. Estimates carry an automatic "
             "GRADE-style certainty (not a guideline panel's judgement); the PRISMA 2020 flow of "
             f"this version is in `{PRISMA_FILE}`."]
    if digest.is_baseline:
        lines += ["", f"The first published version: {digest.comparison_rows} comparison rows "
                      f"({digest.headline_rows} headline rows) and {digest.trials} trials. Later "
                      "versions list what moved since the one before."]
        return "\n".join(lines) + "\n"
    for change_type, heading in CHANGE_HEADINGS.items():
        rows = [c for c in digest.changes if c["change_type"] == change_type]
        if not rows:
            continue
        lines += ["", f"## {heading} ({len(rows)})", ""]
        for row in rows:
            lines.append(_change_line(row))
    return "\n".join(lines) + "\n"


def _change_line(row: dict[str, Any]) -> str:
    star = " (headline)" if row.get("is_headline") else ""
    text = f"- **{row['label']}**{star} — `{row['entity_id']}`: "
    if row["before"] is None:
        text += f"{row['after']}"
    elif row["after"] is None:
        text += f"{row['before']} → removed"
    else:
        text += f"{row['before']} → {row['after']}"
    added, removed = row.get("fact_ids_added") or [], row.get("fact_ids_removed") or []
    if added:
        text += "; facts added: " + ", ".join(f"`{f}`" for f in added)
    if removed:
        text += "; facts removed: " + ", ".join(f"`{f}`" for f in removed)
    return text


def atom_feed(digest: Digest, markdown: str, previous_feed: Path | None) -> str:
    """The Atom feed of this version: its entry first, then the earlier versions' entries
    (carried over from the previous version's feed, newest first, at most
    FEED_ENTRIES_KEPT)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", FEED_ID)
    _text(feed, "title", "Betacell living evidence: what moved")
    _text(feed, "updated", digest.published_at.isoformat())
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "Betacell")
    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    _text(entry, "id", f"urn:betacell:version:{digest.version}")
    _text(entry, "title", digest.title)
    _text(entry, "updated", digest.published_at.isoformat())
    _text(entry, "summary", _summary(digest))
    ET.SubElement(entry, f"{{{ATOM}}}content", {"type": "text"}).text = markdown
    for earlier in _earlier_entries(previous_feed, exclude=digest.version)[
            :FEED_ENTRIES_KEPT - 1]:
        feed.append(earlier)
    ET.indent(feed)
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = text
    return element


def _summary(digest: Digest) -> str:
    if digest.is_baseline:
        return f"First version: {digest.comparison_rows} comparison rows, {digest.trials} trials."
    return "; ".join(f"{sum(c['change_type'] == t for c in digest.changes)} {h.lower()}"
                     for t, h in CHANGE_HEADINGS.items()
                     if any(c["change_type"] == t for c in digest.changes))


def _earlier_entries(previous_feed: Path | None, exclude: str) -> list[ET.Element]:
    if previous_feed is None or not previous_feed.exists():
        return []
    root = ET.parse(previous_feed).getroot()
    return [e for e in root.findall(f"{{{ATOM}}}entry")
            if e.findtext(f"{{{ATOM}}}id") != f"urn:betacell:version:{exclude}"]


def post_digest(settings: Settings, digest: Digest, markdown: str) -> str | None:
    """POST the digest to the alert webhook as a ``digest`` event (failure alerts carry no
    event, or their own); ``text`` keeps chat integrations working. Returns a problem or None."""
    if not settings.alert_webhook_url:
        return None
    text = markdown if len(markdown) <= WEBHOOK_TEXT_LIMIT else (
        markdown[:WEBHOOK_TEXT_LIMIT] + f"\n… (cut; the whole digest is {DIGEST_FILE} of "
                                        f"version {digest.version})")
    payload = {"event": "digest", "version": digest.version,
               "previous_version": digest.previous_version, "title": digest.title,
               "changes": len(digest.changes), "text": redact(text)}
    try:
        httpx.post(settings.alert_webhook_url, json=payload, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        return f"digest webhook failed: {type(exc).__name__}"
    return None


def _write(path: Path, text: str) -> None:
    """Write beside, then rename: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
