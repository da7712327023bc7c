"""Referential closure: registry ids that the curated outcome sheets, the curated links, the
registries' secondary-id lists or PubMed DataBank entries name, but that no record in the
warehouse carries, are fetched by id from a source that can (a resource declaring
``fetch_by_id`` for that registry), landed and loaded like any page.

The ids come from the dbt model ``int_trial_references`` (the id patterns are the seed
``registry_id_patterns``), built on the build database just before the closure: that model and
what it needs, as views (``--vars '{references_only: true}'``), so it costs one short dbt call and
no table the full build makes again. When no source brought anything new and the code is the
published version's, the build copy's model is current and dbt is not called. Every attempt is
recorded in ``raw.reference_checks``; what still cannot be resolved is listed by the mart
``unresolved_references`` (a gate warning, never a reason to publish nothing).

An id a registry answered "not found" is a known unknown: it is asked again only after a wait
that starts at ``BETACELL_CLOSURE_NOT_FOUND_RETRY_HOURS`` (a day) and doubles with every further
"not found", up to ``BETACELL_CLOSURE_NOT_FOUND_MAX_RETRY_HOURS`` (a negative cache read from
the checks the warehouse keeps), so a scheduled sheet-only run makes no request for it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import polars as pl

from flows import raw_loader, sources, stages
from flows.db import connect
from flows.errors import BetacellError, SourceError
from flows.landing import LandingRun, new_run_id, utc_now
from flows.publish import code_fingerprint, published_fingerprint
from flows.report import RefreshSummary
from flows.settings import Settings
from flows.sources.base import Fetch, Resource, SourceRun
from flows.transform import run_dbt

REFERENCES = ["build", "--select", "+int_trial_references", "--exclude-resource-type", "test",
              "unit_test", "--vars", "{references_only: true}"]


@dataclass
class ClosureResult:
    referenced: int = 0
    fetched: dict[str, int] = field(default_factory=dict)
    unresolved: list[dict[str, str]] = field(default_factory=list)
    not_found: int = 0  # ids a registry was asked for this run and did not know
    runs: dict[str, list[LandingRun]] = field(default_factory=lambda: defaultdict(list))
    resources: dict[str, Resource] = field(default_factory=dict)  # of the sources that fetched


def close_references(settings: Settings, build: Path, mode: str, summary: RefreshSummary,
                     run_ids: dict[str, list[str]]) -> None:
    """Find what is named but missing, fetch it by id, land and load it (this run's run ids
    of each source grow by the loads)."""
    if not (stages.nothing_new_loaded(summary)
            and published_fingerprint(settings) == code_fingerprint(settings)):
        run_dbt(settings, REFERENCES, build, target=settings.build_dir / "dbt_target_references")
    con = connect(build, settings)
    try:
        with fetchers(settings, mode) as fetch_by_registry:
            result = resolve(con, settings, mode, fetch_by_registry,
                             f"closure-{utc_now():%Y%m%dT%H%M%SZ}", missing_references(con))
        summary.fetched_by_id = result.fetched
        summary.unresolved_references = result.unresolved
        summary.not_found_by_id = result.not_found
        for name, landings in result.runs.items():
            run = SourceRun(name, "by_id", landings, records_landed=result.fetched.get(name, 0))
            try:
                raw_loader.load(con, settings, result.resources[name], run)
            except BetacellError as exc:
                stages.note_failure(settings, summary, name, exc)
                continue
            run_ids.setdefault(name, []).extend(run.run_ids)
    finally:
        con.close()


@contextmanager
def fetchers(settings: Settings, mode: str
             ) -> Iterator[dict[str, tuple[Resource, Fetch | None]]]:
    """registry -> (the resource fetching its ids, its fetch by id, or None when it cannot
    fetch in this mode)."""
    with ExitStack() as stack:
        yield {r.fetches_registry: (r, stack.enter_context(r.fetch_by_id(settings, mode)))
               for r in sources.resources() if r.fetch_by_id and r.fetches_registry}


def missing_references(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    """``(registry, id) -> {referenced_by, ...}`` for every id named but not in the warehouse."""
    rows = con.execute("""select registry, registry_id, list(distinct referenced_by)
                          from intermediate.int_trial_references
                          where not is_in_warehouse group by all""").fetchall()
    return {(registry, value): set(named_by) for registry, value, named_by in rows}


def resolve(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str,
            fetch_by_registry: dict[str, tuple[Resource, Fetch | None]], run_id: str,
            missing: dict[tuple[str, str], set[str]]) -> ClosureResult:
    """Fetch what is missing (as far as the fetchers allow) and record every check. A fetch
    returns the record, or None when the registry does not know the id. Landed records are
    loaded by the caller."""
    result = ClosureResult(referenced=len(missing))
    checks = []
    budget = settings.closure_max_fetches
    now = utc_now()
    known_unknown = known_unknowns(con, settings, now)
    for (registry, value), referenced_by in sorted(missing.items()):
        resource, fetch = fetch_by_registry.get(registry, (None, None))
        status, reason, record, asked = "unresolved", None, None, False
        if fetch is None:
            reason = (f"{registry} ids come only through WHO ICTRP exports; no export in the "
                      "inbox lists it" if resource is None
                      else f"{registry} is not fetched by id in {mode} mode")
        elif (registry, value) in known_unknown:
            last_asked, next_ask = known_unknown[(registry, value)]
            status = "not_found"
            reason = (f"{registry} does not know {value} (not found when last asked, "
                      f"{last_asked:%Y-%m-%d %H:%M} UTC; not asked again before "
                      f"{next_ask:%Y-%m-%d %H:%M} UTC)")
        elif budget <= 0:
            reason = f"not fetched: more than {settings.closure_max_fetches} missing ids this run"
        else:
            budget -= 1
            asked = True
            try:
                record = fetch(value)
            except SourceError as exc:
                reason = f"fetch failed: {exc}"
            else:
                if record is None:
                    status = "not_found"
                    reason = f"{registry} does not know {value} (not found)"
                    result.not_found += 1
                else:
                    status = "fetched"
        if record is not None:
            _land(settings, result, resource.name, record)
            result.resources[resource.name] = resource
            result.fetched[resource.name] = result.fetched.get(resource.name, 0) + 1
        else:
            result.unresolved.append({"registry": registry, "registry_id": value,
                                      "reason": reason})
        checks.append({"registry": registry, "registry_id": value,
                       "referenced_by": sorted(referenced_by), "status": status,
                       "reason": reason, "run_id": run_id, "checked_at": now,
                       "asked_registry": asked})
    for runs in result.runs.values():
        for run in runs:
            run.complete({"records": sum(e.record_count for e in run.entries())})
    _record_checks(con, checks)
    return result


def known_unknowns(con: duckdb.DuckDBPyConnection, settings: Settings, now: datetime
                   ) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    """``(registry, id) -> (last asked, next ask)`` for the ids whose registry last answered
    "not found" and whose wait has not passed: the first wait is the retry setting (a day), each
    further "not found" in a row doubles it, up to the maximum."""
    rows = con.execute("""
        with asked as (
            select registry, registry_id, checked_at, status = 'not_found' as not_found,
                   row_number() over (partition by registry, registry_id
                                      order by checked_at desc) as recency
            from raw.reference_checks where asked_registry
        ),
        latest_found_or_failed as (
            select registry, registry_id, min(recency) as recency
            from asked where not not_found group by all
        )
        select asked.registry, asked.registry_id, max(asked.checked_at), count(*)
        from asked left join latest_found_or_failed using (registry, registry_id)
        where asked.not_found and asked.recency < coalesce(latest_found_or_failed.recency, 1e9)
        group by all""").fetchall()
    first = settings.closure_not_found_retry_hours
    longest = max(first, settings.closure_not_found_max_retry_hours)
    cache = {}
    for registry, value, last_asked, in_a_row in rows:
        next_ask = last_asked + timedelta(hours=min(first * 2 ** (in_a_row - 1), longest))
        if now < next_ask:
            cache[(registry, value)] = (last_asked, next_ask)
    return cache


def _land(settings: Settings, result: ClosureResult, source: str, record: dict) -> None:
    runs = result.runs[source]
    if not runs:
        run = LandingRun(settings.raw_dir, source, new_run_id())
        run.start({"run_id": run.run_id, "source": source, "mode": "by_id",
                   "purpose": "referential closure"})
        runs.append(run)
    run = runs[0]
    page = len(run.entries()) + 1
    run.land_records([orjson.dumps(record)], page=page, query={"by_id": True},
                     fetched_at=utc_now())


def _record_checks(con: duckdb.DuckDBPyConnection, checks: list[dict]) -> None:
    if not checks:
        return
    frame = pl.DataFrame(checks, schema={
        "registry": pl.String, "registry_id": pl.String, "referenced_by": pl.List(pl.String),
        "status": pl.String, "reason": pl.String, "run_id": pl.String,
        "checked_at": pl.Datetime("us", "UTC"), "asked_registry": pl.Boolean})
    con.register("reference_checks_frame", frame)
    try:
        con.execute("insert into raw.reference_checks by name select * from reference_checks_frame")
    finally:
        con.unregister("reference_checks_frame")
