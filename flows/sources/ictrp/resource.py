"""WHO ICTRP as a resource: ``raw.ictrp_trials``, appended per export (within one export a
``TrialID`` twice with other content is rejected, an identical copy dropped; across exports the
later one is the newer version, and staging keeps the newest per id). Every export file of the
inbox not yet loaded and published (by sha256) is landed, one page per file; a file the reader
refuses is one rejected record, so it never blocks the others."""

from __future__ import annotations

import hashlib

import orjson

from flows.errors import SourceError
from flows.landing import LandingRun, new_run_id, utc_now
from flows.settings import Settings
from flows.sources.base import ExtractRequest, Resource, SourceRun
from flows.sources.ictrp import client, parse

SOURCE = "ictrp"


def extract(request: ExtractRequest) -> SourceRun:
    settings = request.settings
    inbox = client.inbox(settings, request.mode)
    files, warnings = client.read_inbox(inbox)
    published = published_export_hashes(settings, request.state.loaded_runs)
    new = [(path, content, hashlib.sha256(content).hexdigest()) for path, content in files]
    new = [(path, content, digest) for path, content, digest in new if digest not in published]
    run = SourceRun(SOURCE, "files", warnings=warnings,
                    ledger={"query": {"files": [path.name for path, _, _ in new]}})
    if not new:
        run.skipped_reason = f"no new export in {inbox}"
        return run
    landing = LandingRun(settings.raw_dir, SOURCE, new_run_id())
    landing.start({"run_id": landing.run_id, "source": SOURCE, "inbox": str(inbox)})
    run.runs = [landing]
    for page, (path, content, digest) in enumerate(new, start=1):
        try:
            export = parse.read_export(path, content)
        except (SourceError, OSError) as exc:  # this file alone is rejected, with the reason
            export = parse.Export([{"_parse_problem": f"{path.name}: the whole file was "
                                    f"refused: {exc}"}], "refused")
        records = [orjson.dumps(r) for r in export.records]
        landing.land_records(records, page=page, query={"file": path.name, "sha256": digest,
                                                        "encoding": export.encoding},
                             fetched_at=utc_now())
        run.records_landed += len(records)
        run.pages_landed += 1
    landing.complete({"files": [path.name for path, _, _ in new],
                      "records": run.records_landed})
    return run


def published_export_hashes(settings: Settings, loaded_runs: frozenset[str]) -> set[str]:
    """sha256 of the exports whose landing run is loaded in the *published* warehouse.

    Landing is not loading: a file landed by a run that failed later (a bad file beside it, a
    gate, a crash) was never published, so it is landed and loaded again."""
    hashes: set[str] = set()
    for manifest in (settings.raw_dir / SOURCE).glob("*/manifest.jsonl"):
        if manifest.parent.name not in loaded_runs:
            continue
        for line in manifest.read_bytes().splitlines():
            if line:
                hashes.add(orjson.loads(line).get("query", {}).get("sha256", ""))
    return hashes


DDL = """
create table if not exists raw.ictrp_trials (
    record_id       varchar not null,   -- TrialID as exported
    source_register varchar,
    payload         json not null,      -- the export's Trial fields (text cleaned of invalid chars)
    run_id          varchar not null,
    fetched_at      timestamptz not null,
    source_file     varchar not null,
    source_line     integer not null
);
"""

RESOURCE = Resource(
    name=SOURCE,
    table="ictrp_trials",
    ddl=DDL,
    primary_key=("record_id",),
    write_disposition="append",
    extract=extract,
    parse_line=parse.check_record,
    same_key_in_one_file="rejected_if_different",
    record_id_field="TrialID",
    limit_reject_share=False,  # a user's export file stands alone: one bad file blocks no other
)
