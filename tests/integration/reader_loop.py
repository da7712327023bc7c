"""A separate reader process: queries the published warehouse read-only in a loop.

Each iteration opens a short-lived read-only connection, reads the version stamp and the row
count of every mart, and checks they belong together. Runs until the stop file exists, then writes a JSON summary.
"""

from __future__ import annotations

import json
import os
import sys
import time

import duckdb


def main(path: str, out: str, stop_file: str, max_seconds: float = 900) -> None:
    deadline = time.monotonic() + max_seconds
    reads, errors, mixed, versions = 0, [], [], []
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                version_id, counts = con.execute(
                    "select version_id, mart_row_counts from meta.published_version").fetchone()
                for mart, expected in json.loads(counts).items():
                    (actual,) = con.execute(f"select count(*) from marts.{mart}").fetchone()
                    if actual != expected:
                        mixed.append(f"{version_id}: {mart} has {actual}, stamp says {expected}")
                if not versions or versions[-1] != version_id:
                    versions.append(version_id)
                reads += 1
            finally:
                con.close()
        except Exception as exc:  # noqa: BLE001 - every failure is the test's business
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.02)
    with open(out, "w") as handle:
        json.dump({"reads": reads, "errors": errors[:20], "error_count": len(errors),
                   "mixed": mixed[:20], "versions": versions}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
