"""`betacell status` lists every unresolved reference (the id, its registry, when a registry was
last asked, why), not only how many there are."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import duckdb

from flows.db import ensure_raw_schema
from flows.settings import REPO_DIR

UNRESOLVED = [("ClinicalTrials.gov", "NCT09999901", datetime(2026, 12, 1, 8, tzinfo=UTC),
               "ClinicalTrials.gov does not know NCT09999901 (not found)"),
              ("ChiCTR", "ChiCTR2300000001", None,
               "ChiCTR ids come only through WHO ICTRP exports; no export in the inbox lists it")]


def published_warehouse(path) -> None:
    """The tables `betacell status` reads, with two unresolved references."""
    con = duckdb.connect(str(path))
    try:
        ensure_raw_schema(con)
        con.execute("create schema marts")
        con.execute("""create table marts.source_status (source varchar, source_label varchar,
            is_stale boolean, last_loaded_at timestamptz, last_attempt_at timestamptz,
            source_data_timestamp varchar, records_loaded bigint, last_error varchar)""")
        con.execute("""create table marts.unresolved_references (registry varchar,
            registry_id varchar, referenced_by varchar[], reference_count integer,
            unresolved_reason varchar, last_checked_at timestamptz, last_checked_run_id varchar,
            last_asked_at timestamptz)""")
        con.executemany("insert into marts.unresolved_references values "
                        "(?, ?, ['outcome_sheet:sheet.csv'], 1, ?, ?, 'closure-1', ?)",
                        [(r, i, why, asked, asked) for r, i, asked, why in UNRESOLVED])
    finally:
        con.close()


def test_status_lists_the_unresolved_ids_with_when_they_were_asked_and_why(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    published_warehouse(data / "warehouse.duckdb")
    status = subprocess.run([sys.executable, "-m", "flows.cli", "status"], cwd=REPO_DIR,
                            env={"PATH": "/usr/bin:/bin", "BETACELL_DATA_DIR": str(data),
                                 "COLUMNS": "200", "HOME": str(tmp_path)},
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    out = status.stdout
    assert "Unresolved references (2)" in out, out[-3000:]
    listed = {line.split("│")[1].strip(): line for line in out.splitlines()
              if line.count("│") >= 4 and ("NCT0" in line or "ChiCTR2" in line)}
    assert set(listed) == {"NCT09999901", "ChiCTR2300000001"}, out[-3000:]
    assert "2026-12-01" in listed["NCT09999901"] and "not found" in listed["NCT09999901"]
    assert "only through WHO ICTRP" in listed["ChiCTR2300000001"]
