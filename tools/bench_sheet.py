"""A large outcome sheet through the whole pipeline: how long the dbt models take.

    python -m tools.bench_sheet --rows 100000 --work /tmp/bench-sheet

writes a sheet of ``--rows`` rows made from the shipped sheet's rows (each copy a study and a
cohort of its own, proportions with counts redrawn from the row's own proportion, so every copy
passes the sheet validation and pooled groups hold hundreds of cohorts), runs ``betacell run
--source snapshot`` on it in a fresh data directory and prints the slowest dbt models
(dbt's own timings, from run_results.json) and the wall time of the run.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from flows.settings import REPO_DIR

SHIPPED_SHEET = REPO_DIR / "data" / "outcomes" / "published_outcomes.csv"
LONG_TEXT = ("population_note", "dose", "immunosuppression", "cell_source", "source", "journal")


def copied_row(row: dict[str, str], copy: int, rng: random.Random) -> dict[str, str]:
    out = dict(row, study_id=f"{row['study_id']}_C{copy:05d}")
    if copy == 0:
        return out
    out["trial_id"] = ""  # a cohort of its own
    for column in LONG_TEXT:  # keeps 100,000 rows under the sheet size limit
        out[column] = ""
    if row["measure"] == "proportion" and row["n_events"] and row["n_total"]:
        total = int(row["n_total"])
        share = int(row["n_events"]) / total if total else 0.0
        events = sum(rng.random() < share for _ in range(total))
        out.update(n_events=str(events), value=str(events / total) if total else "",
                   value_as_reported="", ci_low="", ci_high="")
    return out


def write_sheet(path: Path, rows: int, seed: int = 26) -> None:
    with SHIPPED_SHEET.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, template = reader.fieldnames, list(reader)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for number in range(rows):
            copy, index = divmod(number, len(template))
            writer.writerow(copied_row(template[index], copy, rng))


def run(work: Path, rows: int) -> dict:
    outcomes = work / "outcomes"
    write_sheet(outcomes / "bench_outcomes.csv", rows)
    data = work / "data"
    env = {"BETACELL_DATA_DIR": str(data), "BETACELL_OUTCOMES_DIR": str(outcomes),
           "BETACELL_SNAPSHOT_DIR": str(REPO_DIR / "data" / "snapshot")}
    started = time.perf_counter()
    completed = subprocess.run([str(Path(sys.executable).with_name("betacell")), "run",
                                "--source", "snapshot"], env={**_environ(), **env},
                               capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"the run failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}"
                         f"\n{completed.stderr[-3000:]}")
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        status = con.sql("select status, row_count from raw.outcome_sheet_versions "
                         "where sheet_file = 'bench_outcomes.csv'").fetchall()
    finally:
        con.close()
    if status != [("accepted", rows)]:
        raise SystemExit(f"the bench sheet was not accepted whole: {status}")
    results = json.loads((data / "build" / "dbt_target" / "run_results.json").read_text())
    timings = sorted(((r["unique_id"].split(".")[-1], r["execution_time"])
                      for r in results["results"]), key=lambda t: -t[1])
    return {"rows": rows, "exit": completed.returncode, "wall_seconds": round(wall, 1),
            "dbt_seconds": round(results["elapsed_time"], 1),
            "slowest": [(name, round(seconds, 1)) for name, seconds in timings[:8]]}


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--work", type=Path, required=True,
                        help="a fresh directory for the sheet and the data directory")
    args = parser.parse_args()
    print(json.dumps(run(args.work, args.rows), indent=2))


if __name__ == "__main__":
    main()
