"""``betacell``: the command line. Thin: parse options, show progress, print clear errors."""

from __future__ import annotations

import logging
import os
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

app = typer.Typer(
    help="Betacell: evidence warehouse for stem-cell therapies in diabetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)


class Source(StrEnum):
    snapshot = "snapshot"
    live = "live"


def _prefect_defaults(verbose: bool) -> None:
    # The first temporary Prefect server on a fresh machine migrates its database: allow for it.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    # No network beyond package registries here; the server must not try to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _fail(exc: BaseException, debug: bool, after: str = "") -> None:
    """One paragraph for the user (``after`` closes it), or the traceback with --debug."""
    from flows.errors import BetacellError
    from flows.redaction import format_exception, mask_exception, redact

    mask_exception(exc)
    closing = f" {after}" if after else ""
    if debug:
        sys.stderr.write(format_exception(exc))
        if after:
            err_console.print(after, highlight=False)
    elif isinstance(exc, BetacellError):
        err_console.print(f"[bold red]Error:[/] {exc}{closing}", highlight=False)
    else:
        err_console.print(
            f"[bold red]Unexpected error:[/] {type(exc).__name__}: {redact(exc)}. "
            f"Rerun with --debug for the traceback.{closing}",
            highlight=False,
        )
    raise typer.Exit(1)


def _live_version(settings) -> tuple[str | None, str]:
    """The published version and when it was published (its warehouse file's time)."""
    from flows.publish import published_version

    try:
        published = datetime.fromtimestamp(settings.warehouse_path.stat().st_mtime).astimezone()
    except OSError:
        return None, ""
    return published_version(settings) or "(unversioned)", f"{published:%Y-%m-%d %H:%M %Z}"


def _what_stays_live(settings, before: tuple[str | None, str], source: str) -> str:
    """After a failed run: what it published (nothing, unless the live version changed) and
    what readers see now; a live run is pointed at the shipped snapshot."""
    version, when = _live_version(settings)
    if version is not None and version != before[0]:
        said = f"Version {version} was published ({when}) before the run failed."
    elif version is not None:
        said = f"Nothing was published: version {version} (published {when}) stays live."
    else:
        said = "Nothing was published, and nothing was published before."
    if source == Source.live:
        said += (" To build from the shipped snapshot instead (offline), run "
                 "`betacell run --source snapshot`.")
    return said


class _NoTracebacks(logging.Filter):
    """On the terminal, Prefect's records that carry a traceback, or that repeat a failure
    ("Finished in state Failed(...)"), are left out: the run ends with one paragraph of its
    own, and the log file keeps the whole record."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not (record.exc_info or "Traceback (most recent call last)" in text
                    or text.startswith("Finished in state Failed"))


def _quiet_prefect_console(log_file: Path | None) -> None:
    """CLI runs without --debug: Prefect's exception logging goes to ``log_file`` only (every
    record of the run is written there, secrets masked), not to the terminal."""
    from flows.redaction import RedactingFilter

    root = logging.getLogger()
    for logger in [root] + [lg for lg in logging.Logger.manager.loggerDict.values()
                            if isinstance(lg, logging.Logger)]:
        for handler in logger.handlers:
            if type(handler).__name__ == "PrefectConsoleHandler":
                handler.addFilter(_NoTracebacks())
    if log_file is None:
        return
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    except OSError:
        return  # an unwritable data directory has its own error; the terminal still says it
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - "
                                           "%(message)s"))
    handler.addFilter(RedactingFilter())
    for name in ("prefect", "flows"):
        logging.getLogger(name).addHandler(handler)


def _alert_configuration_error(exc: BaseException) -> None:
    """A configuration error stops the run before the flow (and its failure hook) starts:
    alert from here, best effort."""
    from flows.report import alert_without_a_run

    alert_without_a_run(f"Betacell refresh did not start: {exc}")


class RichReporter:
    """Progress bars for the long stages (pages fetched, records loaded, dbt build)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def start(self, stage: str, total: int | None = None) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1, total: int | None = None) -> None:
        self.start(stage, total)
        if total is not None:
            self.progress.update(self.tasks[stage], total=total)
        self.progress.advance(self.tasks[stage], amount)

    def note(self, line: str) -> None:
        self.progress.console.print(line, highlight=False)

    def finish(self, stage: str) -> None:
        if stage in self.tasks:
            task = self.progress.tasks[self.tasks[stage]]
            done = task.completed if task.total is None else task.total
            self.progress.update(self.tasks[stage], total=max(done, 1), completed=max(done, 1))


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD)") from exc


@app.command()
def run(
    source: Annotated[Source, typer.Option(help="snapshot (offline, shipped) or live APIs")] = (
        Source.snapshot
    ),
    since: Annotated[
        str | None, typer.Option(help="Fetch records updated on/after this date (YYYY-MM-DD)")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Full refresh (live: download the bulk archive)")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect logs")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks")] = False,
) -> None:
    """Run the Prefect flow `refresh-warehouse`: ingest, load raw, dbt build, publish."""
    since_date = _parse_date(since)
    _prefect_defaults(verbose or debug)
    from flows import progress as progress_hook
    from flows.preflight import check_configuration
    from flows.runlock import refuse_if_running
    from flows.settings import get_settings

    try:
        settings = get_settings()
        check_configuration(settings, source.value)  # before any server or download starts
    except Exception as exc:  # noqa: BLE001 - one clear paragraph for the user
        _alert_configuration_error(exc)
        _fail(exc, debug)
    try:
        refuse_if_running(settings)  # before a temporary Prefect server starts (seconds)
    except Exception as exc:  # noqa: BLE001 - one clear paragraph for the user
        _fail(exc, debug)
    live_before = _live_version(settings)
    try:
        from flows.refresh import refresh_warehouse

        if not debug:
            _quiet_prefect_console(settings.data_path / "logs" / "refresh.log")

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bars:
            progress_hook.set_reporter(RichReporter(bars))
            summary = refresh_warehouse(source=source.value, since=since_date, full=full)
    except Exception as exc:  # noqa: BLE001 - one clear paragraph for the user
        _fail(exc, debug, _what_stays_live(settings, live_before, source))
    finally:
        progress_hook.set_reporter(None)
    _print_summary(summary, settings)


def _print_summary(summary: dict, settings) -> None:
    console.print()
    if summary.get("skipped_reason"):
        console.print(f"[yellow]{summary['skipped_reason']}[/]")
    else:
        console.print(
            f"Run [bold]{summary['run_id']}[/] ({summary['mode']}): landed "
            f"{summary['records_landed']} records in {summary['pages_landed']} pages, loaded "
            f"{summary['records_loaded']} new, rejected {summary['records_rejected']}."
        )
    for name in summary.get("stale_sources", []):
        console.print(f"[red]{name} failed; its last good data stay (stale):[/] "
                      f"{summary['sources'][name]['message']}", highlight=False)
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]Warning:[/] {warning}", highlight=False)
    if summary.get("unresolved_references"):
        listed = ", ".join(u["registry_id"] for u in summary["unresolved_references"][:10])
        console.print(f"[yellow]{len(summary['unresolved_references'])} referenced trial id(s) "
                      f"could not be resolved[/] ({listed}…); see marts.unresolved_references",
                      highlight=False)
    if quarantined := summary.get("quarantined"):
        console.print(f"[red]{len({q['record_id'] for q in quarantined})} record(s) quarantined[/]"
                      " (their results rows are kept out of the marts; the rest is published):",
                      highlight=False)
        for q in quarantined:
            console.print(f"  {q['record_id']} ({q['source']}): {q['check_name']} "
                          f"[{(q.get('offending_values') or '')[:160]}]", highlight=False)
    sheets = summary.get("sources", {}).get("outcomes") or {}
    if sheets.get("status") == "skipped" and sheets.get("message"):  # no sheet file at all
        where = str(settings.outcomes_path)
        looked = "" if where in sheets["message"] else f"looked in {where}; "
        console.print(f"[yellow]No outcome sheets found:[/] {sheets['message']} ({looked}"
                      "BETACELL_OUTCOMES_DIR sets the folder)", highlight=False, soft_wrap=True)
    for sheet in summary.get("outcome_sheets", []):
        if sheet["status"] in {"rejected", "still_rejected"}:
            console.print(f"[red]Outcome sheet {sheet['sheet']} rejected:[/] {sheet['message']}")
        else:
            console.print(f"Outcome sheet {sheet['sheet']}: {sheet['status']} "
                          f"({sheet.get('rows', 0)} rows, {sheet.get('warnings', 0)} warnings)")
    for gate, result in summary.get("gates", {}).items():
        status = "[green]passed[/]" if result.get("passed") else "[red]failed[/]"
        console.print(f"{gate} gate: {status} ({result.get('expectations', 0)} expectations, "
                      f"{len(result.get('warnings', []))} warnings)")
    counts = summary.get("dbt_status_counts", {})
    built = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    console.print(f"dbt build: {built or 'not run'}")
    table = Table(title="Published tables", show_lines=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.get("table_counts", {}).items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    warehouse = summary.get("warehouse")
    if warehouse:
        console.print(f"\nPublished: [bold]{warehouse}[/] (version {summary['published_version']})",
                      highlight=False, soft_wrap=True)
    else:  # nothing republished: the version that stays live, by its real paths
        version, when = _live_version(settings)
        warehouse = str(settings.warehouse_path)
        console.print(f"\nLive (unchanged): [bold]{warehouse}[/] (version {version}, published "
                      f"{when}); Parquet: {settings.marts_dir}", highlight=False, soft_wrap=True)
    console.print("Query it read-only, e.g.:")
    console.print(
        f'  duckdb -readonly {warehouse} "select nct_id, brief_title, overall_status '
        'from staging.stg_ctgov__studies limit 10"',
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  python -c \"import duckdb; print(duckdb.connect('{warehouse}', read_only=True)"
        ".sql('select count(*) from staging.stg_ctgov__studies'))\"",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def status(debug: Annotated[bool, typer.Option("--debug")] = False) -> None:
    """Last runs, row counts per table and source data timestamps of the published warehouse."""
    from flows.report import read_failure
    from flows.settings import get_settings

    settings = get_settings()
    failure = read_failure(settings)
    if failure:
        console.print(f"[bold red]Last refresh FAILED[/] ({_failed_at(failure)}): "
                      f"{failure.get('message') or '(no message)'}", highlight=False)
    if not settings.warehouse_path.exists():
        console.print(f"Nothing published yet at {settings.warehouse_path}. Run `betacell run`.")
        raise typer.Exit(0)
    try:
        import duckdb

        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            _print_status(con, settings.warehouse_path, failure)
        finally:
            con.close()
    except Exception as exc:  # noqa: BLE001
        _fail(exc, debug)


def _first_sentence(message: str) -> str:
    """Why a run failed, in short (the whole message is printed above the table)."""
    reason = message.split(" failed: ", 1)[-1]
    return reason.split(". ", 1)[0]


def _failed_at(failure: dict) -> str:
    try:
        return f"{datetime.fromisoformat(failure['at']).astimezone():%Y-%m-%d %H:%M %Z}"
    except (KeyError, TypeError, ValueError):
        return "time unknown"


def _print_status(con, path, failure: dict | None = None) -> None:
    from flows.state import table_counts

    modified = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    console.print(f"Published warehouse: [bold]{path}[/] (published {modified:%Y-%m-%d %H:%M %Z})")
    failed_source = (failure or {}).get("source")
    freshness = Table(title="Sources")
    for column in ("source", "state", "last loaded", "last attempt", "source data timestamp",
                   "records loaded", "last error"):
        freshness.add_column(column)
    for source, label, stale, loaded, attempt, stamp, records, error in con.execute(
            "select source, source_label, is_stale, last_loaded_at, last_attempt_at, "
            "source_data_timestamp, records_loaded, last_error from marts.source_status "
            "order by source").fetchall():
        state = "[red]STALE[/]" if stale else "never loaded" if loaded is None else "fresh"
        attempted = _when(attempt)
        if source == failed_source:  # a failed run published nothing: its attempt is here
            state, attempted = f"[red]FAILED[/] (last good: {state})", _failed_at(failure)
            error = _first_sentence(failure.get("message") or "")
        freshness.add_row(label, state, _when(loaded), attempted, stamp or "",
                          f"{records:,}", (error or "")[:160])
    console.print(freshness)
    runs = Table(title="Last runs")
    for column in ("run_id", "source", "mode", "status", "finished_at", "loaded", "rejected"):
        runs.add_column(column)
    for row in con.execute(
        "select run_id, source, mode, status, strftime(finished_at, '%Y-%m-%d %H:%M'), "
        "records_loaded, records_rejected from raw.ingest_runs order by finished_at desc limit 12"
    ).fetchall():
        runs.add_row(*["" if v is None else str(v) for v in row])
    console.print(runs)
    _print_quarantine(con)
    _print_unresolved(con)
    counts = Table(title="Tables")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, rows in table_counts(con).items():
        counts.add_row(name, f"{rows:,}")
    console.print(counts)


def _print_quarantine(con) -> None:
    """Records quarantined in the published version (marts.quarantined_records)."""
    if not con.execute("select count(*) from information_schema.tables where table_schema = "
                       "'marts' and table_name = 'quarantined_records'").fetchone()[0]:
        return
    rows = con.execute("select record_id, source, check_name, detected_by, first_seen_at, "
                       "offending_values from marts.quarantined_records "
                       "order by record_id, check_name").fetchall()
    if not rows:
        console.print("Quarantined records: none")
        return
    table = Table(title=f"[red]QUARANTINED[/] records ({len({r[0] for r in rows})}): their "
                        "results rows are kept out of the marts")
    for column in ("record", "source", "check", "found by", "first seen", "offending values"):
        table.add_column(column)
    for record_id, source, check, by, first_seen, values in rows:
        table.add_row(record_id, source, check, by, _when(first_seen), (values or "")[:160])
    console.print(table)


def _print_unresolved(con) -> None:
    """Every id named but not in the published version (marts.unresolved_references)."""
    columns = {c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'unresolved_references'").fetchall()}
    if not columns:
        return
    last_asked = "last_asked_at" if "last_asked_at" in columns else "null"
    rows = con.execute(f"select registry_id, registry, {last_asked}, unresolved_reason "
                       "from marts.unresolved_references order by registry, registry_id"
                       ).fetchall()
    if not rows:
        console.print("Unresolved references: none")
        return
    table = Table(title=f"Unresolved references ({len(rows)}): named, but no record carries them")
    for column in ("id", "registry", "last asked"):
        table.add_column(column, no_wrap=True)
    table.add_column("why")
    for registry_id, registry, asked, reason in rows:
        table.add_row(registry_id, registry, _when(asked), (reason or "")[:160])
    console.print(table)


def _when(value) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


@app.command()
def serve(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the scheduled deployments (needs PREFECT_API_URL pointing at a real server)."""
    _prefect_defaults(verbose)
    if not os.environ.get("PREFECT_API_URL"):
        err_console.print("[bold red]Error:[/] schedules only fire on a real Prefect server. "
                          "Run `make serve` (starts one), or set PREFECT_API_URL.")
        raise typer.Exit(1)
    from flows.deployments import SCHEDULES, serve_all

    for schedule in SCHEDULES:
        when = schedule.cron or f"every {schedule.interval_seconds} s"
        console.print(f"serving [bold]{schedule.name}[/] ({when}): {schedule.description}")
    serve_all()


@app.command()
def docs(
    serve: Annotated[bool, typer.Option("--serve/--no-serve",
                                        help="Serve the site on 127.0.0.1 after generating")] = True,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8080,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """dbt docs (models, columns, lineage) for the published warehouse, served on 127.0.0.1."""
    from flows.docs import docs_server, generate_docs
    from flows.settings import get_settings

    try:
        site = generate_docs(get_settings())
    except Exception as exc:  # noqa: BLE001
        _fail(exc, debug)
    console.print(f"dbt docs written to {site} (static_index.html opens from disk as well)")
    if not serve:
        return
    server = docs_server(site, port)
    console.print(f"Serving dbt docs on http://127.0.0.1:{server.server_address[1]}/ "
                  "(Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class ExportFormat(StrEnum):
    metafor = "metafor"
    revman = "revman"
    csv = "csv"


@app.command()
def export(
    comparison: Annotated[str, typer.Option(
        help="A comparison_id of marts.therapy_outcome_comparison, or column=value pairs "
             "separated by commas (e.g. outcome=insulin_independence,is_headline=true)")],
    format: Annotated[ExportFormat, typer.Option(  # noqa: A002 - the option's name
        "--format", help="metafor (escalc/rma CSV), revman (dichotomous data) or csv (all)")
    ] = ExportFormat.csv,
    output: Annotated[str | None, typer.Option(help="Write here (default: standard output)")
                      ] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """The study-level rows behind published estimates (cohort, events, n, definition, window,
    source ids), in the layout metafor, RevMan or a spreadsheet imports."""
    from pathlib import Path

    from flows.export import export_comparison, write_export
    from flows.settings import get_settings

    try:
        exported = export_comparison(get_settings(), comparison, format.value)
        write_export(exported, Path(output) if output else None)
    except Exception as exc:  # noqa: BLE001 - one clear paragraph for the user
        _fail(exc, debug)
    if output:
        console.print(f"{exported.cohorts} cohort row(s) behind {len(exported.comparison_ids)} "
                      f"estimate(s) written to {output} ({format.value})")


@app.command()
def bench(
    studies: Annotated[int, typer.Option(help="Synthetic studies to generate (0 = skip)")] = 100_000,
    pubmed_records: Annotated[
        int, typer.Option(help="Synthetic PubMed records to parse (0 = skip)")
    ] = 30_000,
    workdir: Annotated[str | None, typer.Option(help="Scratch directory")] = None,
    skip_pandas: Annotated[bool, typer.Option(help="Skip the pandas baseline")] = False,
) -> None:
    """Benchmarks: CTgov archive -> raw -> staging; PubMed XML parsing vs pubmed-parser.

    A developer tool: it lives in the checkout's tools/ (not in the runtime package) and runs in
    its own process, which imports the runtime package (never the reverse)."""
    import subprocess

    from flows.settings import REPO_DIR

    if not (REPO_DIR / "tools" / "bench.py").is_file():
        raise typer.BadParameter(f"the benchmark needs a source checkout ({REPO_DIR}/tools)")
    script = ("import sys; from tools.bench import run_ctgov_benchmark, run_pubmed_benchmark; "
              "studies, records, workdir, pandas = sys.argv[1:]; workdir = workdir or None\n"
              "if int(studies): run_ctgov_benchmark(studies=int(studies), workdir=workdir, "
              "with_pandas=pandas == '1')\n"
              "if int(records): run_pubmed_benchmark(records=int(records), workdir=workdir)")
    done = subprocess.run([sys.executable, "-c", script, str(studies), str(pubmed_records),
                           workdir or "", "0" if skip_pandas else "1"], cwd=REPO_DIR)
    raise typer.Exit(done.returncode)


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
