"""Great Expectations gates: a raw gate after loading, a mart gate after ``dbt build``.

GX's SQL datasource does not work on DuckDB (IndexError in resolve_metric_bundle), so each check
is a small DataFrame queried from the build database and validated through a pandas datasource.
Suites, validation definitions and checkpoints live in the file context ``expectations/gx/``
(JSON under version control); :func:`ensure_gx_objects` creates or updates them from the
definitions below, so code and JSON cannot drift. Every expectation carries a severity in its
meta: ``critical`` fails the run (nothing is published), ``warning`` is reported.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from flows.errors import GateFailed
from flows.landing import utc_now
from flows.settings import REPO_DIR, Settings

GX_ROOT = REPO_DIR / "expectations"
DATASOURCE = "betacell_frames"
OVERALL_STATUSES = [
    "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING",
    "RECRUITING", "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
]
STUDY_TYPES = ["INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"]
SEEDS = REPO_DIR / "dbt_project" / "seeds"


def seed_column(seed: str, column: str) -> list[str]:
    """One column of a dbt seed: vocabularies have their one home in the seeds."""
    with (SEEDS / f"{seed}.csv").open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def seed_column_where(seed: str, column: str, **equal: str) -> list[str]:
    """One column of a dbt seed, for the rows whose other columns have the given values."""
    with (SEEDS / f"{seed}.csv").open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)
                if all(row[k] == v for k, v in equal.items())]


THERAPY_CLASSES = seed_column("therapy_classes", "therapy_class")
PARTIAL_DATE = r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$"
CRITICAL, WARNING = "critical", "warning"


@dataclass(frozen=True)
class Expect:
    kind: str  # a gx.expectations class name
    kwargs: dict[str, Any]
    severity: str = CRITICAL


@dataclass(frozen=True)
class Check:
    name: str
    gate: str  # raw | mart
    sql: str  # a query over the build database; $run_ids (this run's runs of the source) is bound
    expectations: tuple[Expect, ...]
    source: str | None = None  # raw checks: the source whose runs they validate


RAW_CHECKS = (
    Check(
        "raw_ctgov_studies",
        "raw",
        """select nct_id, last_update_post_date,
                  payload->>'$.protocolSection.statusModule.overallStatus' as overall_status,
                  payload->>'$.protocolSection.designModule.studyType' as study_type,
                  payload->>'$.protocolSection.statusModule.startDateStruct.date' as start_date_text,
                  payload->>'$.protocolSection.statusModule.completionDateStruct.date' as completion_date_text
           from raw.ctgov_studies where list_contains($run_ids, run_id)""",
        (
            Expect("ExpectColumnValuesToNotBeNull", {"column": "nct_id"}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "nct_id", "regex": r"^NCT\d{8}$"}),
            Expect("ExpectColumnValuesToBeUnique", {"column": "nct_id"}),
            Expect("ExpectColumnValuesToBeInSet",
                   {"column": "overall_status", "value_set": OVERALL_STATUSES}),
            Expect("ExpectColumnValuesToBeInSet", {"column": "study_type", "value_set": STUDY_TYPES}),
            Expect("ExpectColumnValuesToMatchRegex",
                   {"column": "start_date_text", "regex": PARTIAL_DATE}),
            Expect("ExpectColumnValuesToMatchRegex",
                   {"column": "completion_date_text", "regex": PARTIAL_DATE}),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "last_update_post_date",
                                                     "mostly": 0.5}, WARNING),
        ),
        "ctgov",
    ),
    Check(
        "raw_ctgov_row_count",
        "raw",
        """with runs as (  -- searches only: fetches by id (referential closure) are not compared
               select run_id, records_loaded + records_rejected as records, finished_at
               from raw.ingest_runs
               where source = 'ctgov' and status = 'loaded' and mode <> 'by_id'
           ),
           current_run as (
               select * from runs where list_contains($run_ids, run_id)
               order by finished_at desc limit 1
           ),
           previous_run as (
               select * from runs where not list_contains($run_ids, run_id)
               order by finished_at desc limit 1
           )
           select current_run.records, previous_run.records as previous_records,
                  current_run.records::double / nullif(previous_run.records, 0)
                    as ratio_to_previous
           from current_run left join previous_run on true""",
        (Expect("ExpectColumnValuesToBeBetween",
                {"column": "ratio_to_previous", "min_value": 0.5, "max_value": 2.0}, WARNING),),
        "ctgov",
    ),
    Check(
        "raw_pubmed_articles",
        "raw",
        """select publication_key, pmid, doi, pub_year, title
           from raw.pubmed_articles where list_contains($run_ids, run_id)""",
        (
            Expect("ExpectColumnValuesToNotBeNull", {"column": "publication_key"}),
            Expect("ExpectColumnValuesToBeUnique", {"column": "publication_key"}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "pmid", "regex": r"^\d{1,9}$"}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "doi", "regex": r"^10\.\d{4,9}/\S+$"}),
            Expect("ExpectColumnValuesToBeBetween",
                   {"column": "pub_year", "min_value": 1900, "max_value": 2100}),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "pub_year", "mostly": 0.95}, WARNING),
        ),
        "pubmed",
    ),
    Check(
        "raw_outcome_sheet",
        "raw",
        """select outcome, measure, verified, value, n_events, n_total
           from raw.outcome_sheet_rows
           where sheet_sha256 in (select sheet_sha256 from raw.outcome_sheet_versions
                                  where status = 'accepted')""",
        (
            Expect("ExpectColumnValuesToBeInSet", {"column": "verified",
                                                   "value_set": seed_column_where(
                                                       "sheet_vocabulary", "value",
                                                       column_name="verified")}),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "outcome"}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "n_total", "column_B": "n_events", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
        ),
        "outcomes",
    ),
)

MART_CHECKS = (
    Check(
        "mart_outcome_proportions",
        "mart",
        """select outcome_fact_id, value, n_events, n_analyzed
           from marts.fct_outcomes where measure = 'proportion'""",
        (
            Expect("ExpectColumnValuesToBeBetween", {"column": "value", "min_value": 0,
                                                     "max_value": 1}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "n_analyzed", "column_B": "n_events", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
        ),
    ),
    Check(
        "mart_pooled_estimates",
        "mart",
        """select comparison_id, estimate, ci_low, ci_high, pi_low, pi_high, n_events,
                  n_participants, k_cohorts
           from marts.therapy_outcome_comparison where estimate is not null""",
        (
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "ci_high", "column_B": "estimate", "or_equal": True}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "estimate", "column_B": "ci_low", "or_equal": True}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "pi_high", "column_B": "estimate", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "estimate", "column_B": "pi_low", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "n_participants", "column_B": "n_events", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
            Expect("ExpectColumnValuesToBeBetween", {"column": "k_cohorts", "min_value": 1}),
        ),
    ),
    Check(
        "mart_proportion_estimates",
        "mart",
        """select comparison_id as row_id, estimate, ci_low, ci_high
           from marts.therapy_outcome_comparison where estimate is not null
           union all
           select therapy_class || ':' || harm_category, proportion, ci_low, ci_high
           from marts.safety_signals where proportion is not null""",
        tuple(Expect("ExpectColumnValuesToBeBetween", {"column": c, "min_value": 0,
                                                       "max_value": 1})
              for c in ("estimate", "ci_low", "ci_high")),
    ),
    Check(
        "mart_safety_counts",
        "mart",
        """select therapy_class, diabetes_type, harm_category, participants_affected_low,
                  participants_affected_high, participants_at_risk
           from marts.safety_signals where participants_at_risk is not null""",
        (Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "participants_at_risk", "column_B": "participants_affected_high",
                 "or_equal": True}),
         Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "participants_affected_high",
                 "column_B": "participants_affected_low", "or_equal": True})),
    ),
    Check(
        # row level, at the grain the registry gives: group totals, term bounds, single terms
        "mart_adverse_event_counts",
        "mart",
        """select adverse_event_fact_id as row_id, affected_low, affected_high, at_risk_count,
                  events_count
           from marts.fct_adverse_events where affected_low is not null
           union all
           select adverse_event_term_id, affected_count, affected_count, at_risk_count,
                  events_count
           from marts.fct_adverse_event_terms where affected_count is not null""",
        (
            Expect("ExpectColumnValuesToBeBetween", {"column": "affected_low", "min_value": 0}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "affected_high", "column_B": "affected_low", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "at_risk_count", "column_B": "affected_high", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "events_count", "column_B": "affected_low", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
        ),
    ),
    Check(
        "mart_trial_classes",
        "mart",
        "select trial_id, therapy_class from marts.dim_trials",
        (
            Expect("ExpectColumnValuesToBeUnique", {"column": "trial_id"}),
            Expect("ExpectColumnValuesToBeInSet", {"column": "therapy_class",
                                                   "value_set": THERAPY_CLASSES}),
        ),
    ),
    Check(
        "mart_orphans",
        "mart",
        """select
             (select count(*) from marts.trial_publication_links
              where not is_trial_in_warehouse and not is_publication_in_warehouse) as orphan_links,
             (select count(*) from marts.fct_outcomes o where source = 'registry_results'
              and not exists (select 1 from marts.dim_trials t where t.trial_id = o.trial_id))
                as orphan_registry_outcomes,
             (select count(*) from marts.fct_adverse_events a where source = 'registry_results'
              and not exists (select 1 from marts.dim_trials t where t.trial_id = a.trial_id))
                as orphan_registry_harms""",
        (
            # a link whose trial and publication are both outside the warehouse is an
            # unresolved reference (listed in marts.unresolved_references), not a broken build
            Expect("ExpectColumnValuesToBeBetween",
                   {"column": "orphan_links", "min_value": 0, "max_value": 0}, WARNING),
            *(Expect("ExpectColumnValuesToBeBetween", {"column": c, "min_value": 0,
                                                       "max_value": 0})
              for c in ("orphan_registry_outcomes", "orphan_registry_harms")),
        ),
    ),
    Check(
        "mart_unresolved_references",
        "mart",
        "select count(*) as unresolved_references from marts.unresolved_references",
        (Expect("ExpectColumnValuesToBeBetween", {"column": "unresolved_references",
                                                  "min_value": 0, "max_value": 0}, WARNING),),
    ),
    Check(
        "mart_freshness",
        "mart",
        """select date_diff('day', max(retrieved_at), now()) as days_since_registry_fetch
           from marts.dim_trials""",
        (Expect("ExpectColumnValuesToBeBetween", {"column": "days_since_registry_fetch",
                                                  "min_value": 0, "max_value": 30}, WARNING),),
    ),
)

ALL_CHECKS = RAW_CHECKS + MART_CHECKS


@dataclass
class CheckOutcome:
    check: str
    expectation: str
    column: str
    severity: str
    success: bool
    unexpected_count: int | None = None
    sample: list[Any] = field(default_factory=list)
    source: str | None = None


@dataclass
class GateResult:
    gate: str
    outcomes: list[CheckOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def critical_failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == CRITICAL]

    def failed_sources(self) -> set[str]:
        return {o.source for o in self.critical_failures if o.source}

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == WARNING]

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": not self.critical_failures,
            "checks": len({o.check for o in self.outcomes}),
            "expectations": len(self.outcomes),
            "critical_failures": [o.__dict__ for o in self.critical_failures],
            "warnings": [o.__dict__ for o in self.warnings],
            "skipped": self.skipped,
            "data_docs": self.data_docs,
        }


GX_RUNTIME_ENV = "BETACELL_GX_RUNTIME_DIR"
KEEP_VALIDATIONS_PER_CHECK = 20


def gx_runtime_dir(settings: Settings) -> Path:
    """Where GX writes run state: data/quality/gx_validations/ and data/quality/data_docs/, never
    the tracked tree (great_expectations.yml reads this from ${BETACELL_GX_RUNTIME_DIR})."""
    return settings.quality_dir


def _context(settings: Settings | None = None):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    runtime = gx_runtime_dir(settings) if settings else Path(tempfile.gettempdir()) / "betacell-gx"
    os.environ[GX_RUNTIME_ENV] = str(runtime)
    return gx.get_context(mode="file", project_root_dir=str(GX_ROOT))


def ensure_gx_objects(context=None):
    """Create or update datasource, assets, suites, validation definitions and checkpoints."""
    import great_expectations as gx

    context = context or _context()
    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(DATASOURCE)
    for check in ALL_CHECKS:
        try:
            asset = source.get_asset(check.name)
        except LookupError:
            asset = source.add_dataframe_asset(check.name)
        try:
            batch = asset.get_batch_definition("whole_frame")
        except (KeyError, ValueError):
            batch = asset.add_batch_definition_whole_dataframe("whole_frame")
        suite = gx.ExpectationSuite(name=check.name, meta={"gate": check.gate})
        for expect in check.expectations:
            cls = getattr(gx.expectations, expect.kind)
            suite.add_expectation(cls(**expect.kwargs, meta={"severity": expect.severity}))
        suite = context.suites.add_or_update(suite)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(data=batch, suite=suite, name=check.name)
        )
        # No per-checkpoint Data Docs action: the gate builds the docs once, after all checks.
        context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=check.name,
                validation_definitions=[definition],
                actions=[],
                result_format={"result_format": "COMPLETE"},
            )
        )
    return context


def run_gate(
    settings: Settings, database: Path, gate: str, run_ids: dict[str, list[str]] | None = None
) -> GateResult:
    """Run every check of a gate on frames queried from ``database`` and write the report.

    Raw checks validate the runs of their source loaded in this run (``run_ids``); a source
    with none is skipped. The caller decides what a critical failure stops (see
    :func:`raise_for_failures`)."""
    run_ids = run_ids or {}
    context = _context(settings)
    try:
        for check in ALL_CHECKS:
            context.checkpoints.get(check.name)
    except Exception:  # noqa: BLE001 - a fresh or partial context: (re)create from the definitions
        context = ensure_gx_objects(context)
    result = GateResult(gate)
    con = duckdb.connect(str(database), read_only=True)
    try:
        for check in (c for c in ALL_CHECKS if c.gate == gate):
            params = {}
            if "$run_ids" in check.sql:
                runs = run_ids.get(check.source or "") or []
                if not runs:
                    result.skipped.append(f"{check.name}: nothing new loaded in this run")
                    continue
                params = {"run_ids": runs}
            frame = con.execute(check.sql, params).df()
            if frame.empty:
                result.skipped.append(f"{check.name}: no rows")
                continue
            checkpoint = context.checkpoints.get(check.name)
            run = checkpoint.run(batch_parameters={"dataframe": frame})
            for validation in run.run_results.values():
                for item in validation.results:
                    config = item.expectation_config
                    kwargs = config.kwargs
                    result.outcomes.append(CheckOutcome(
                        check=check.name,
                        expectation=config.type,
                        column=kwargs.get("column") or
                        f"{kwargs.get('column_A')} vs {kwargs.get('column_B')}",
                        severity=(config.meta or {}).get("severity", CRITICAL),
                        success=bool(item.success),
                        unexpected_count=item.result.get("unexpected_count"),
                        sample=_jsonable(item.result.get("partial_unexpected_list", [])[:5]),
                        source=check.source,
                    ))
    finally:
        con.close()
    result.data_docs = _publish_data_docs(context, settings)
    _write_report(settings, result)
    return result


def raise_for_failures(result: GateResult, sources: set[str] | None = None) -> None:
    """Raise :class:`GateFailed` for critical failures (of the given sources only, if given)."""
    failures = [o for o in result.critical_failures
                if sources is None or o.source is None or o.source in sources]
    if failures:
        raise GateFailed(_failure_message(result, failures))


def _jsonable(values: list[Any]) -> list[Any]:
    return json.loads(json.dumps(values, default=str))


def _failure_message(result: GateResult, failures: list[CheckOutcome]) -> str:
    parts = [
        f"check {o.check}: {o.expectation} on {o.column} failed for {o.unexpected_count} "
        f"row(s), e.g. {o.sample}"
        for o in failures[:6]
    ]
    return (f"{result.gate} gate failed (stage: validate-{result.gate}); nothing was published "
            f"and the previous warehouse stays in place. " + "; ".join(parts)
            + (f". Data Docs: {result.data_docs}" if result.data_docs else ""))


def _publish_data_docs(context, settings: Settings) -> str | None:
    """Prune old validation results, then build Data Docs once (data/quality/data_docs/)."""
    _prune_validations(gx_runtime_dir(settings) / "gx_validations")
    try:
        context.build_data_docs()
    except Exception:  # noqa: BLE001 - docs are a convenience; the gate result stands
        return None
    index = gx_runtime_dir(settings) / "data_docs" / "index.html"
    return str(index) if index.exists() else None


def _prune_validations(root: Path, keep: int = KEEP_VALIDATIONS_PER_CHECK) -> None:
    """Keep the newest results per check: the Data Docs index reads them all on every build."""
    if not root.exists():
        return
    for check_dir in (p for p in root.iterdir() if p.is_dir()):
        results = sorted(check_dir.rglob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in results[keep:]:
            stale.unlink(missing_ok=True)


def _write_report(settings: Settings, result: GateResult) -> None:
    settings.quality_dir.mkdir(parents=True, exist_ok=True)
    report = {**result.as_dict(), "validated_at": utc_now().isoformat()}
    (settings.quality_dir / f"{result.gate}_gate_latest.json").write_text(
        json.dumps(report, indent=2, default=str))
    with (settings.quality_dir / "gate_history.jsonl").open("a") as history:
        history.write(json.dumps(report, default=str) + "\n")


# Namespace of the GX objects' ids (uuid5 of what each object is): any fixed UUID will do.
GX_ID_NAMESPACE = uuid.UUID("7d1c5b0e-2f43-4a8e-9c1b-5e0b3a6f9d21")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def stabilise_gx_ids(gx_dir: Path | None = None) -> None:
    """Give every GX object written under ``gx_dir`` an id derived from what it is.

    GX draws a new random id for every suite, expectation, asset, batch, validation definition
    and checkpoint it saves, so regenerating unchanged definitions rewrote every file — and
    these files are part of the code fingerprint, so the next run rebuilt for nothing. Each id
    becomes a uuid5 of the object's kind and names, replaced in every file that refers to it."""
    gx_dir = gx_dir or GX_ROOT / "gx"
    stable: dict[str, str] = {}

    def name(old: str, *what: str) -> None:
        stable[old] = str(uuid.uuid5(GX_ID_NAMESPACE, "/".join(what)))

    def documents(folder: str) -> list[dict[str, Any]]:
        return [json.loads(path.read_text()) for path in sorted((gx_dir / folder).glob("*.json"))]

    for suite in documents("expectations"):
        name(suite["id"], "suite", suite["name"])
        for index, expectation in enumerate(suite["expectations"]):
            name(expectation["id"], "expectation", suite["name"], str(index), expectation["type"])
    for definition in documents("validation_definitions"):
        data = definition["data"]
        source, asset = data["datasource"]["name"], data["asset"]["name"]
        name(definition["id"], "validation_definition", definition["name"])
        name(data["datasource"]["id"], "datasource", source)
        name(data["asset"]["id"], "asset", source, asset)
        name(data["batch_definition"]["id"], "batch_definition", source, asset,
             data["batch_definition"]["name"])
    for checkpoint in documents("checkpoints"):
        name(checkpoint["id"], "checkpoint", checkpoint["name"])

    files = [gx_dir / "great_expectations.yml"] + sorted(
        path for folder in ("expectations", "validation_definitions", "checkpoints")
        for path in (gx_dir / folder).glob("*.json"))
    for path in files:
        text = path.read_text()
        replaced = UUID_TEXT.sub(lambda match: stable.get(match.group(0), match.group(0)), text)
        if replaced != text:
            path.write_text(replaced)


if __name__ == "__main__":  # pragma: no cover - maintainers: regenerate expectations/gx JSON
    ensure_gx_objects()
    stabilise_gx_ids()
    print(f"GX objects written under {GX_ROOT / 'gx'}")
