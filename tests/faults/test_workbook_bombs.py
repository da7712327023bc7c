"""Workbook bombs are refused before they are parsed, in seconds and a few MB.

The probe: a 2 MB .xlsx of 15 M rows took 97 s and 1.48 GB before the 100k-row cap rejected it
(its dimension declares column XFD, so every row was padded to 16,384 cells); a 249 KB file of
6 M shared strings was loaded whole, 0.7 GB. Each bomb here is read in a child process that
reports its time and peak memory: it must be rejected, naming the file and the cause, in at
most 5 s of CPU and 200 MB (the interpreter with the sheet reader imported takes ~100 MB).
The bombs are scaled down from the probe's (3 M rows, 2 M strings) to keep the suite fast;
the README's measurement uses the full-size ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.settings import REPO_DIR
from flows.sources.outcomes.client import read_sheet
from tests.faults.workbook_bombs import repeated_rows, row_bomb, strings_bomb, write_workbook

pytestmark = pytest.mark.integration

MEASURE = """
import json, resource, sys, time
from pathlib import Path
from flows.sources.base import SheetRejected
from flows.sources.outcomes.client import read_sheet
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, start_cpu = time.monotonic(), cpu()
try:
    outcome = f"read {len(read_sheet(Path(sys.argv[1])))} rows"
except SheetRejected as exc:
    outcome = str(exc)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a large test worker
# would report the worker's memory
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.monotonic() - start, "cpu_seconds": cpu() - start_cpu,
                  "outcome": outcome, "peak_mb": peak_kb / 1024}))
"""


def read_in_child(path: Path, timeout: float = 120) -> dict:
    child = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=REPO_DIR,
                           capture_output=True, text=True, timeout=timeout)
    assert child.returncode == 0, child.stderr[-2000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("make, cause", [
    (lambda p: row_bomb(p, 3_000_000), "declares 3,000,001 rows"),
    (lambda p: strings_bomb(p, 2_000_000), "holds more than the 500,000 strings"),
])
def test_a_workbook_bomb_is_rejected_within_5_s_and_200_mb(tmp_path, make, cause):
    bomb = make(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 2_500_000
    measured = read_in_child(bomb)
    assert cause in measured["outcome"] and "bomb.xlsx" in measured["outcome"], measured
    # CPU time: on a shared machine the wall clock also counts the wait for a free core
    assert measured["cpu_seconds"] <= 5 and measured["seconds"] <= 60, measured
    assert measured["peak_mb"] <= 200, measured


def bounded(tmp_path: Path, name: str, **parts) -> str:
    from flows.sources.base import SheetRejected

    path = write_workbook(tmp_path / name, **parts)
    with pytest.raises(SheetRejected) as rejected:
        read_sheet(path)
    return str(rejected.value)


def test_rows_past_the_cap_are_counted_from_the_stream_when_no_dimension_says_so(tmp_path):
    message = bounded(tmp_path, "rows.xlsx", sheet_rows=repeated_rows(100_100))
    assert "more than 100,000 rows" in message


def test_a_cell_far_to_the_right_is_refused_not_padded(tmp_path):
    far = [b'<row r="2"><c r="A2"><v>1</v></c><c r="XFD2"><v>1</v></c></row>']
    assert "a cell at XFD2, beyond the 208 columns" in bounded(tmp_path, "wide.xlsx",
                                                                sheet_rows=far)
    assert "declares columns up to XFD" in bounded(tmp_path, "dim.xlsx", sheet_rows=[],
                                                   dimension="A1:XFD3")


def test_a_declared_shared_string_count_past_the_cap_is_refused_unread(tmp_path):
    path = write_workbook(tmp_path / "declared.xlsx", [], [b"a"])
    import zipfile

    rewritten = tmp_path / "declared2.xlsx"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(rewritten, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("sharedStrings.xml"):
                data = data.replace(b"<sst ", b'<sst uniqueCount="9000000" ')
            new.writestr(info, data)
    from flows.sources.base import SheetRejected

    with pytest.raises(SheetRejected, match="declares 9,000,000 strings"):
        read_sheet(rewritten)


def test_an_ordinary_workbook_still_reads(tmp_path):
    rows = [b'<row r="2"><c r="A2" t="inlineStr"><is><t>S1</t></is></c>'
            b'<c r="B2" t="inlineStr"><is><t>T1D</t></is></c></row>']
    path = write_workbook(tmp_path / "fine.xlsx", rows, [b"unused"], dimension="A1:F2")
    assert read_sheet(path) == [{"study_id": "S1", "diabetes_type": "T1D", "outcome": "",
                                 "measure": "", "unit": "", "verified": "",
                                 "(sheet row)": "2"}]
